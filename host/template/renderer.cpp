// Tree + variables → segments. Strict: an undefined name or attribute is an error naming it.
// Filters and tests follow MiniJinja's behaviour for what workflows use.
#include "template/syntax.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <sstream>

namespace vik::tmpl::detail {

namespace {

// Values: JSON plus "undefined" (which remembers what was looked up, for the error message).
struct Value {
    bool undefined = false;
    std::string what; // for undefined: the name or attribute that was missing
    json::value v;

    static Value of(json::value v) { return Value{false, {}, std::move(v)}; }
    static Value missing(std::string what) { return Value{true, std::move(what), nullptr}; }
};

std::string to_display(const json::value &v) {
    switch (v.kind()) {
    case json::kind::string:
        return std::string(v.get_string());
    case json::kind::null:
        return "none";
    case json::kind::bool_:
        return v.get_bool() ? "true" : "false";
    case json::kind::int64:
        return std::to_string(v.get_int64());
    case json::kind::uint64:
        return std::to_string(v.get_uint64());
    case json::kind::double_: {
        double d = v.get_double();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
            std::ostringstream ss;
            ss << static_cast<long long>(d) << ".0";
            return ss.str();
        }
        std::ostringstream ss;
        ss.precision(17);
        ss << d;
        return ss.str();
    }
    default:
        return json::serialize(v);
    }
}

class Renderer {
  public:
    Renderer(const std::string &name, const json::object &context) : name_(name) { scopes_.push_back(context); }

    void render(const std::vector<std::unique_ptr<Node>> &nodes, Segments &out) {
        for (const auto &n : nodes)
            render(*n, out);
    }

  private:
    const std::string &name_;
    std::vector<json::object> scopes_; // innermost last

    [[noreturn]] void error(Pos p, const std::string &msg) const {
        throw TemplateError(name_ + ":" + std::to_string(p.line) + ":" + std::to_string(p.col) + ": " + msg);
    }

    // Literal text merges with literal text. A value keeps its own segment, even when empty (in
    // shell text an empty value is still one word), and remembers where its tag stands.
    static void append(Segments &out, std::string text, bool literal, Pos pos = {}) {
        if (literal && text.empty()) return;
        if (literal && !out.empty() && out.back().literal)
            out.back().text += text;
        else
            out.push_back(Segment{std::move(text), literal, literal ? 0 : pos.line, literal ? 0 : pos.col});
    }

    const json::value &defined(const Value &v, Pos pos) const {
        if (v.undefined) error(pos, "undefined value: " + v.what);
        return v.v;
    }

    bool truthy(const Value &v, Pos pos) const {
        const json::value &j = defined(v, pos);
        switch (j.kind()) {
        case json::kind::null:
            return false;
        case json::kind::bool_:
            return j.get_bool();
        case json::kind::int64:
            return j.get_int64() != 0;
        case json::kind::uint64:
            return j.get_uint64() != 0;
        case json::kind::double_:
            return j.get_double() != 0.0;
        case json::kind::string:
            return !j.get_string().empty();
        case json::kind::array:
            return !j.get_array().empty();
        case json::kind::object:
            return !j.get_object().empty();
        }
        return false;
    }

    void render(const Node &n, Segments &out) {
        switch (n.kind) {
        case Node::text_node:
            append(out, n.text, true);
            return;
        case Node::output:
            append(out, to_display(defined(eval(*n.expr), n.expr->pos)), false, n.pos);
            return;
        case Node::block:
            render(n.body, out);
            return;
        case Node::set:
            scopes_.back()[n.var] = defined(eval(*n.expr), n.expr->pos);
            return;
        case Node::if_:
            for (const auto &[cond, body] : n.branches)
                if (!cond || truthy(eval(*cond), cond->pos)) {
                    render(body, out);
                    return;
                }
            return;
        case Node::for_: {
            Value seq_value = eval(*n.expr);
            const json::value &seq = defined(seq_value, n.expr->pos);
            json::array items;
            if (seq.is_array())
                items = seq.get_array();
            else if (seq.is_object())
                for (auto &kv : seq.get_object())
                    items.push_back(json::string(kv.key()));
            else if (seq.is_string())
                for (char c : seq.get_string())
                    items.push_back(json::string(std::string(1, c)));
            else
                error(n.expr->pos, "cannot iterate over " + to_display(seq));
            if (items.empty()) {
                render(n.else_body, out);
                return;
            }
            scopes_.emplace_back();
            for (size_t i = 0; i < items.size(); ++i) {
                auto &scope = scopes_.back();
                scope[n.var] = items[i];
                scope["loop"] = json::object{{"index", i + 1},         {"index0", i},
                                             {"first", i == 0},        {"last", i + 1 == items.size()},
                                             {"length", items.size()}, {"revindex", items.size() - i}};
                render(n.body, out);
            }
            scopes_.pop_back();
            return;
        }
        }
    }

    Value lookup(const std::string &name) const {
        for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
            if (auto *v = it->if_contains(name)) return Value::of(*v);
        return Value::missing("'" + name + "' is undefined");
    }

    static std::string describe(const Expr &e) {
        switch (e.kind) {
        case Expr::var:
            return e.name;
        case Expr::attr:
            return describe(*e.a) + "." + e.name;
        case Expr::index:
            return describe(*e.a) + "[...]";
        default:
            return "value";
        }
    }

    Value member(const Value &base, const Expr &base_expr, const json::value &key, Pos pos) const {
        const json::value &b = defined(base, pos);
        std::string where = describe(base_expr);
        if (b.is_object()) {
            std::string k = key.is_string() ? std::string(key.get_string()) : to_display(key);
            if (auto *v = b.get_object().if_contains(k)) return Value::of(*v);
            return Value::missing("'" + where + "' has no attribute '" + k + "'");
        }
        if (b.is_array() || b.is_string()) {
            int64_t i;
            if (key.is_int64())
                i = key.get_int64();
            else if (key.is_string()) {
                try {
                    size_t used = 0;
                    i = std::stoll(std::string(key.get_string()), &used);
                    if (used != key.get_string().size()) throw std::invalid_argument("x");
                } catch (const std::exception &) {
                    return Value::missing("'" + where + "' has no attribute '" + std::string(key.get_string()) + "'");
                }
            } else
                return Value::missing("'" + where + "' cannot be indexed by " + to_display(key));
            int64_t size =
                b.is_array() ? static_cast<int64_t>(b.get_array().size()) : static_cast<int64_t>(b.get_string().size());
            if (i < 0) i += size;
            if (i < 0 || i >= size) return Value::missing("index " + std::to_string(i) + " is out of range for '" + where + "'");
            if (b.is_array()) return Value::of(b.get_array()[static_cast<size_t>(i)]);
            return Value::of(json::string(std::string(1, b.get_string()[static_cast<size_t>(i)])));
        }
        return Value::missing("'" + where + "' (" + to_display(b) + ") has no attribute '" + to_display(key) + "'");
    }

    static bool is_number(const json::value &v) { return v.is_int64() || v.is_uint64() || v.is_double(); }
    static double num(const json::value &v) {
        return v.is_int64()    ? static_cast<double>(v.get_int64())
               : v.is_uint64() ? static_cast<double>(v.get_uint64())
                               : v.get_double();
    }

    static bool equal(const json::value &a, const json::value &b) {
        if (is_number(a) && is_number(b)) return num(a) == num(b);
        return a == b;
    }

    Value arithmetic(const std::string &op, const json::value &a, const json::value &b, Pos pos) const {
        if (op == "+" && a.is_string() && b.is_string())
            return Value::of(json::string(std::string(a.get_string()) + std::string(b.get_string())));
        if (op == "+" && a.is_array() && b.is_array()) {
            json::array r = a.get_array();
            for (auto &x : b.get_array())
                r.push_back(x);
            return Value::of(r);
        }
        if (!is_number(a) || !is_number(b)) error(pos, "cannot apply '" + op + "' to " + to_display(a) + " and " + to_display(b));
        bool ints = a.is_int64() && b.is_int64();
        if (ints) {
            int64_t x = a.get_int64(), y = b.get_int64(), r = 0;
            auto overflow = [&] { error(pos, "integer overflow in '" + op + "' (results must fit in 64 bits)"); };
            bool wrapped = (op == "+" && __builtin_add_overflow(x, y, &r)) || (op == "-" && __builtin_sub_overflow(x, y, &r)) ||
                           (op == "*" && __builtin_mul_overflow(x, y, &r));
            if (wrapped) overflow();
            if (op == "+" || op == "-" || op == "*") return Value::of(r);
            if ((op == "//" || op == "%") && y == 0) error(pos, "division by zero");
            if ((op == "//" || op == "%") && y == -1 && x == INT64_MIN) overflow();
            if (op == "//") return Value::of(x / y);
            if (op == "%") return Value::of(x % y);
        }
        double x = num(a), y = num(b);
        if (op == "+") return Value::of(x + y);
        if (op == "-") return Value::of(x - y);
        if (op == "*") return Value::of(x * y);
        if (y == 0) error(pos, "division by zero");
        if (op == "/") return Value::of(x / y);
        if (op == "//") return Value::of(std::floor(x / y));
        return Value::of(std::fmod(x, y));
    }

    Value eval(const Expr &e) {
        switch (e.kind) {
        case Expr::literal:
            return Value::of(e.value);
        case Expr::var:
            return lookup(e.name);
        case Expr::attr:
            return member(eval(*e.a), *e.a, json::string(e.name), e.pos);
        case Expr::index: {
            Value base = eval(*e.a);
            return member(base, *e.a, defined(eval(*e.b), e.b->pos), e.pos);
        }
        case Expr::list: {
            json::array a;
            for (auto &x : e.args)
                a.push_back(defined(eval(*x), x->pos));
            return Value::of(a);
        }
        case Expr::dict: {
            json::object o;
            for (size_t i = 0; i + 1 < e.args.size(); i += 2)
                o[to_display(defined(eval(*e.args[i]), e.args[i]->pos))] = defined(eval(*e.args[i + 1]), e.args[i + 1]->pos);
            return Value::of(o);
        }
        case Expr::cond: {
            if (truthy(eval(*e.b), e.b->pos)) return eval(*e.a);
            if (e.c) return eval(*e.c);
            return Value::of(json::string());
        }
        case Expr::unary: {
            Value v = eval(*e.a);
            if (e.name == "not") return Value::of(!truthy(v, e.pos));
            const json::value &j = defined(v, e.a->pos);
            if (j.is_int64()) {
                if (j.get_int64() == INT64_MIN) error(e.pos, "integer overflow in '-' (results must fit in 64 bits)");
                return Value::of(-j.get_int64());
            }
            if (is_number(j)) return Value::of(-num(j));
            error(e.pos, "cannot negate " + to_display(j));
        }
        case Expr::binary:
            return binary(e);
        case Expr::test:
            return test(e);
        case Expr::filter:
            return filter(e);
        }
        error(e.pos, "unsupported expression");
    }

    Value binary(const Expr &e) {
        const std::string &op = e.name;
        if (op == "and") {
            Value a = eval(*e.a);
            if (!truthy(a, e.a->pos)) return a;
            return eval(*e.b);
        }
        if (op == "or") {
            Value a = eval(*e.a);
            if (truthy(a, e.a->pos)) return a;
            return eval(*e.b);
        }
        const json::value a = defined(eval(*e.a), e.a->pos);
        const json::value b = defined(eval(*e.b), e.b->pos);
        if (op == "==") return Value::of(equal(a, b));
        if (op == "!=") return Value::of(!equal(a, b));
        if (op == "~") return Value::of(json::string(to_display(a) + to_display(b)));
        if (op == "in" || op == "not in") {
            bool found = false;
            if (b.is_string() && a.is_string())
                found = std::string_view(b.get_string()).find(std::string_view(a.get_string())) != std::string_view::npos;
            else if (b.is_array())
                found =
                    std::any_of(b.get_array().begin(), b.get_array().end(), [&](const json::value &x) { return equal(x, a); });
            else if (b.is_object() && a.is_string())
                found = b.get_object().contains(a.get_string());
            else
                error(e.pos, "cannot test membership in " + to_display(b));
            return Value::of(op == "in" ? found : !found);
        }
        if (op == "<" || op == ">" || op == "<=" || op == ">=") {
            int cmp;
            if (is_number(a) && is_number(b))
                cmp = num(a) < num(b) ? -1 : num(a) > num(b) ? 1 : 0;
            else if (a.is_string() && b.is_string())
                cmp = std::string_view(a.get_string()).compare(std::string_view(b.get_string()));
            else
                error(e.pos, "cannot compare " + to_display(a) + " with " + to_display(b));
            bool r = op == "<" ? cmp < 0 : op == ">" ? cmp > 0 : op == "<=" ? cmp <= 0 : cmp >= 0;
            return Value::of(r);
        }
        return arithmetic(op, a, b, e.pos);
    }

    Value test(const Expr &e) {
        Value v = eval(*e.a);
        bool r;
        const std::string &t = e.name;
        if (t == "defined")
            r = !v.undefined;
        else if (t == "undefined")
            r = v.undefined;
        else {
            const json::value &j = defined(v, e.a->pos);
            if (t == "none")
                r = j.is_null();
            else if (t == "string")
                r = j.is_string();
            else if (t == "number")
                r = is_number(j);
            else if (t == "mapping")
                r = j.is_object();
            else if (t == "sequence" || t == "iterable")
                r = j.is_array() || j.is_string() || (t == "iterable" && j.is_object());
            else if (t == "true")
                r = j.is_bool() && j.get_bool();
            else if (t == "false")
                r = j.is_bool() && !j.get_bool();
            else if (t == "even" || t == "odd") {
                if (!j.is_int64()) error(e.pos, "test '" + t + "' needs an integer");
                r = (j.get_int64() % 2 == 0) == (t == "even");
            } else
                error(e.pos, "unknown test '" + t + "'");
        }
        return Value::of(e.negate ? !r : r);
    }

    std::string arg_string(const Expr &e, size_t i, const char *filter) {
        if (i >= e.args.size()) error(e.pos, std::string("filter '") + filter + "' needs more arguments");
        Value v = eval(*e.args[i]);
        return to_display(defined(v, e.args[i]->pos));
    }

    Value filter(const Expr &e) {
        const std::string &f = e.name;
        Value in = eval(*e.a);
        if (f == "default" || f == "d") {
            bool boolean = e.args.size() > 1 && truthy(eval(*e.args[1]), e.args[1]->pos);
            if (in.undefined || (boolean && !truthy(in, e.pos)))
                return e.args.empty() ? Value::of(json::string()) : Value::of(defined(eval(*e.args[0]), e.args[0]->pos));
            return in;
        }
        const json::value &v = defined(in, e.a->pos);
        auto str = [&] { return to_display(v); };
        if (f == "lower" || f == "upper") {
            std::string s = str();
            for (char &c : s)
                c = static_cast<char>(f == "lower" ? std::tolower(static_cast<unsigned char>(c))
                                                   : std::toupper(static_cast<unsigned char>(c)));
            return Value::of(json::string(s));
        }
        if (f == "capitalize") {
            std::string s = str();
            for (size_t i = 0; i < s.size(); ++i)
                s[i] = static_cast<char>(i == 0 ? std::toupper(static_cast<unsigned char>(s[i]))
                                                : std::tolower(static_cast<unsigned char>(s[i])));
            return Value::of(json::string(s));
        }
        if (f == "trim") {
            std::string s = str();
            size_t b = s.find_first_not_of(" \t\r\n"), en = s.find_last_not_of(" \t\r\n");
            return Value::of(json::string(b == std::string::npos ? "" : s.substr(b, en - b + 1)));
        }
        if (f == "replace") {
            std::string s = str(), from = arg_string(e, 0, "replace"), to = arg_string(e, 1, "replace");
            if (from.empty()) return Value::of(json::string(s));
            std::string r;
            size_t pos = 0, hit;
            while ((hit = s.find(from, pos)) != std::string::npos) {
                r += s.substr(pos, hit - pos) + to;
                pos = hit + from.size();
            }
            r += s.substr(pos);
            return Value::of(json::string(r));
        }
        if (f == "join") {
            std::string sep = e.args.empty() ? "" : arg_string(e, 0, "join");
            if (!v.is_array()) error(e.pos, "filter 'join' needs a list, got " + str());
            std::string r;
            bool first = true;
            for (auto &x : v.get_array()) {
                r += (first ? "" : sep) + to_display(x);
                first = false;
            }
            return Value::of(json::string(r));
        }
        if (f == "length" || f == "count") {
            if (v.is_array()) return Value::of(static_cast<int64_t>(v.get_array().size()));
            if (v.is_object()) return Value::of(static_cast<int64_t>(v.get_object().size()));
            if (v.is_string()) return Value::of(static_cast<int64_t>(v.get_string().size()));
            error(e.pos, "filter 'length' needs a string, list or map, got " + str());
        }
        if (f == "tojson") return Value::of(json::string(json::serialize(v)));
        if (f == "string") return Value::of(json::string(str()));
        if (f == "int") {
            if (v.is_int64()) return Value::of(v.get_int64());
            if (is_number(v)) {
                double d = num(v);
                // Outside int64's range (or NaN) the conversion is undefined: an error instead.
                if (!(d > -9.2233720368547758e18 && d < 9.2233720368547758e18))
                    error(e.pos, "'int' of " + to_display(v) + ": out of the 64-bit integer range");
                return Value::of(static_cast<int64_t>(d));
            }
            try {
                return Value::of(static_cast<int64_t>(std::stoll(str())));
            } catch (const std::exception &) {
                return Value::of(static_cast<int64_t>(0));
            }
        }
        if (f == "first" || f == "last") {
            if (v.is_array()) {
                if (v.get_array().empty()) return Value::missing("'" + f + "' of an empty list");
                return Value::of(f == "first" ? v.get_array().front() : v.get_array().back());
            }
            if (v.is_string() && !v.get_string().empty())
                return Value::of(json::string(std::string(1, f == "first" ? v.get_string().front() : v.get_string().back())));
            error(e.pos, "filter '" + f + "' needs a non-empty list or string");
        }
        error(e.pos, "unknown filter '" + f +
                         "' (supported: default, lower, upper, capitalize, trim, replace, join, length, count, tojson, string, "
                         "int, first, last)");
    }
};

} // namespace

void render(const Node &root, const json::object &context, const std::string &name, Segments &out) {
    Renderer r(name, context);
    r.render(root.body, out);
}

} // namespace vik::tmpl::detail
