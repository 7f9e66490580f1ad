#include "template/template.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

namespace vik::tmpl {

namespace json = boost::json;

// ---------------------------------------------------------------------------------------------
// Values: JSON plus "undefined" (which remembers what was looked up, for the error message).
// ---------------------------------------------------------------------------------------------

struct Value {
    bool undefined = false;
    std::string what; // for undefined: the name or attribute that was missing
    json::value v;

    static Value of(json::value v) { return Value{false, {}, std::move(v)}; }
    static Value missing(std::string what) { return Value{true, std::move(what), nullptr}; }
};

// ---------------------------------------------------------------------------------------------
// Lexing of the template into text and tags
// ---------------------------------------------------------------------------------------------

struct Pos {
    int line = 1, col = 1;
};

// Limits that keep hostile or runaway templates from exhausting the stack.
constexpr size_t kMaxTokensPerTag = 2000;
constexpr int kMaxNesting = 64; // parentheses, brackets and {% if/for %} blocks

enum class Tok { name, string, integer, number, op, end };

struct Token {
    Tok kind = Tok::end;
    std::string text;
    Pos pos;
};

struct Piece { // one top-level part of the source
    enum Kind { is_text, is_expr, is_stmt } kind = is_text;
    std::string text;          // text content
    std::vector<Token> tokens; // expr/stmt tokens
    Pos pos;
};

class Lexer {
public:
    Lexer(const std::string &src, const std::string &name) : src_(src), name_(name) {}

    std::vector<Piece> run() {
        std::vector<Piece> out;
        bool strip_next_text = false;
        while (i_ < src_.size()) {
            size_t open = find_open(i_);
            std::string text = src_.substr(i_, open - i_);
            Pos text_pos = pos_;
            advance_to(open);
            bool strip_before = open + 2 < src_.size() && src_[open + 2] == '-';
            if (strip_next_text) text.erase(0, text.find_first_not_of(" \t\r\n") == std::string::npos ? text.size() : text.find_first_not_of(" \t\r\n"));
            if (strip_before && open < src_.size()) {
                size_t last = text.find_last_not_of(" \t\r\n");
                text.erase(last == std::string::npos ? 0 : last + 1);
            }
            strip_next_text = false;
            if (!text.empty()) out.push_back(Piece{Piece::is_text, text, {}, text_pos});
            if (open >= src_.size()) break;
            char kind = src_[open + 1];
            Pos tag_pos = pos_;
            advance_to(open + 2 + (strip_before ? 1 : 0));
            if (kind == '#') {
                size_t close = src_.find("#}", i_);
                if (close == std::string::npos) error(tag_pos, "unclosed comment (missing '#}')");
                strip_next_text = close > i_ && src_[close - 1] == '-';
                advance_to(close + 2);
                continue;
            }
            std::string closer = kind == '{' ? "}}" : "%}";
            Piece p{kind == '{' ? Piece::is_expr : Piece::is_stmt, {}, {}, tag_pos};
            for (;;) {
                skip_space();
                if (i_ >= src_.size()) error(tag_pos, "unclosed tag (missing '" + closer + "')");
                if (src_[i_] == '-' && src_.compare(i_ + 1, 2, closer) == 0) {
                    strip_next_text = true;
                    advance_to(i_ + 3);
                    break;
                }
                if (src_.compare(i_, 2, closer) == 0) {
                    advance_to(i_ + 2);
                    break;
                }
                p.tokens.push_back(token());
                // Bounds recursion in the parser and evaluator (a tag of 10 000 parentheses must
                // be an error, not a stack overflow).
                if (p.tokens.size() > kMaxTokensPerTag)
                    error(tag_pos, "tag too long (more than " + std::to_string(kMaxTokensPerTag) + " tokens); split it up");
            }
            Token end;
            end.kind = Tok::end;
            end.pos = pos_;
            p.tokens.push_back(end);
            out.push_back(std::move(p));
        }
        return out;
    }

private:
    const std::string &src_;
    const std::string &name_;
    size_t i_ = 0;
    Pos pos_;

    [[noreturn]] void error(Pos p, const std::string &msg) const {
        throw TemplateError(name_ + ":" + std::to_string(p.line) + ":" + std::to_string(p.col) + ": " + msg);
    }

    size_t find_open(size_t from) const {
        for (size_t k = from; k + 1 < src_.size(); ++k)
            if (src_[k] == '{' && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) return k;
        return src_.size();
    }

    void advance_to(size_t target) {
        target = std::min(target, src_.size());
        for (; i_ < target; ++i_) {
            if (src_[i_] == '\n') {
                ++pos_.line;
                pos_.col = 1;
            } else {
                ++pos_.col;
            }
        }
    }

    void skip_space() {
        while (i_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[i_]))) advance_to(i_ + 1);
    }

    Token token() {
        Token t;
        t.pos = pos_;
        char c = src_[i_];
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            size_t j = i_;
            while (j < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[j])) || src_[j] == '_')) ++j;
            t.kind = Tok::name;
            t.text = src_.substr(i_, j - i_);
            advance_to(j);
            return t;
        }
        if (std::isdigit(static_cast<unsigned char>(c))) {
            size_t j = i_;
            bool dot = false;
            while (j < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[j])) ||
                                       (src_[j] == '.' && !dot && j + 1 < src_.size() && std::isdigit(static_cast<unsigned char>(src_[j + 1]))))) {
                dot = dot || src_[j] == '.';
                ++j;
            }
            t.kind = dot ? Tok::number : Tok::integer;
            t.text = src_.substr(i_, j - i_);
            advance_to(j);
            return t;
        }
        if (c == '"' || c == '\'') {
            std::string s;
            size_t j = i_ + 1;
            while (j < src_.size() && src_[j] != c) {
                if (src_[j] == '\\' && j + 1 < src_.size()) {
                    char e = src_[j + 1];
                    s += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
                    j += 2;
                    continue;
                }
                s += src_[j++];
            }
            if (j >= src_.size()) error(pos_, "unterminated string literal");
            t.kind = Tok::string;
            t.text = s;
            advance_to(j + 1);
            return t;
        }
        static const char *two[] = {"==", "!=", "<=", ">=", "//", "**"};
        for (const char *op : two)
            if (src_.compare(i_, 2, op) == 0) {
                t.kind = Tok::op;
                t.text = op;
                advance_to(i_ + 2);
                return t;
            }
        if (std::string("()[]{}.,|:<>+-*/%~=").find(c) != std::string::npos) {
            t.kind = Tok::op;
            t.text = std::string(1, c);
            advance_to(i_ + 1);
            return t;
        }
        error(pos_, std::string("unexpected character '") + c + "'");
    }
};

// ---------------------------------------------------------------------------------------------
// AST
// ---------------------------------------------------------------------------------------------

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum Kind { literal, var, attr, index, filter, test, unary, binary, list, dict, cond } kind;
    Pos pos;
    json::value value;            // literal
    std::string name;             // var / attr / filter / test / op
    ExprPtr a, b, c;              // operands
    std::vector<ExprPtr> args;    // filter args, list items, dict keys/values (pairs)
    bool negate = false;          // `is not`
};

struct Node {
    enum Kind { text_node, output, if_, for_, set, block } kind = block;
    Pos pos;
    std::string text;                                  // text
    ExprPtr expr;                                      // output / set value / for iterable
    std::vector<std::pair<ExprPtr, std::vector<std::unique_ptr<Node>>>> branches; // if: (cond|null, body)
    std::string var;                                   // for / set target
    std::vector<std::unique_ptr<Node>> body, else_body; // for / block
};

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

class Parser {
public:
    Parser(std::vector<Piece> pieces, const std::string &name) : pieces_(std::move(pieces)), name_(name) {}

    std::unique_ptr<Node> run() {
        auto root = std::make_unique<Node>();
        root->kind = Node::block;
        std::string stop = parse_block(root->body, {});
        if (!stop.empty()) error(stop_pos_, "unexpected '{% " + stop + " %}'");
        return root;
    }

private:
    std::vector<Piece> pieces_;
    const std::string &name_;
    size_t p_ = 0;
    const std::vector<Token> *toks_ = nullptr;
    size_t t_ = 0;
    Pos stop_pos_;
    int depth_ = 0; // current nesting of expressions and blocks

    // Counts one level of nesting for its lifetime; too deep is an error naming the place.
    struct Nest {
        Parser &p;
        Nest(Parser &parser, Pos pos) : p(parser) {
            if (++p.depth_ > kMaxNesting) p.error(pos, "nested too deeply (more than " + std::to_string(kMaxNesting) + " levels)");
        }
        ~Nest() { --p.depth_; }
        Nest(const Nest &) = delete;
        Nest &operator=(const Nest &) = delete;
    };

    [[noreturn]] void error(Pos p, const std::string &msg) const {
        throw TemplateError(name_ + ":" + std::to_string(p.line) + ":" + std::to_string(p.col) + ": " + msg);
    }

    const Token &peek() const { return (*toks_)[t_]; }
    const Token &next() { return (*toks_)[t_ < toks_->size() - 1 ? t_++ : t_]; }
    bool is_op(const char *op) const { return peek().kind == Tok::op && peek().text == op; }
    bool is_name(const char *n) const { return peek().kind == Tok::name && peek().text == n; }
    void expect_op(const char *op) {
        if (!is_op(op)) error(peek().pos, std::string("expected '") + op + "'" + got());
        next();
    }
    std::string got() const {
        if (peek().kind == Tok::end) return ", found end of tag";
        return ", found '" + peek().text + "'";
    }
    void expect_end() {
        if (peek().kind != Tok::end) error(peek().pos, "unexpected '" + peek().text + "' in tag");
    }

    // Parses nodes until a statement whose keyword is in `stops`; returns that keyword ("" at EOF).
    std::string parse_block(std::vector<std::unique_ptr<Node>> &out, std::initializer_list<const char *> stops) {
        while (p_ < pieces_.size()) {
            Piece &piece = pieces_[p_++];
            if (piece.kind == Piece::is_text) {
                auto n = std::make_unique<Node>();
                n->kind = Node::text_node;
                n->text = piece.text;
                out.push_back(std::move(n));
                continue;
            }
            toks_ = &piece.tokens;
            t_ = 0;
            if (piece.kind == Piece::is_expr) {
                auto n = std::make_unique<Node>();
                n->kind = Node::output;
                n->pos = piece.pos;
                if (peek().kind == Tok::end) error(piece.pos, "empty expression");
                n->expr = expression();
                expect_end();
                out.push_back(std::move(n));
                continue;
            }
            if (peek().kind != Tok::name) error(piece.pos, "expected a statement keyword");
            std::string kw = next().text;
            for (const char *s : stops)
                if (kw == s) {
                    stop_pos_ = piece.pos;
                    return kw;
                }
            if (kw == "if") out.push_back(parse_if(piece.pos));
            else if (kw == "for") out.push_back(parse_for(piece.pos));
            else if (kw == "set") out.push_back(parse_set(piece.pos));
            else if (kw == "endif" || kw == "endfor" || kw == "elif" || kw == "else")
                error(piece.pos, "unexpected '{% " + kw + " %}' without a matching opening tag");
            else error(piece.pos, "unknown statement '" + kw + "' (supported: if, elif, else, for, set)");
        }
        return "";
    }

    std::unique_ptr<Node> parse_if(Pos pos) {
        Nest nest(*this, pos);
        auto n = std::make_unique<Node>();
        n->kind = Node::if_;
        n->pos = pos;
        ExprPtr cond = expression();
        expect_end();
        for (;;) {
            std::vector<std::unique_ptr<Node>> body;
            std::string stop = parse_block(body, {"elif", "else", "endif"});
            n->branches.emplace_back(std::move(cond), std::move(body));
            if (stop == "endif") {
                expect_end();
                return n;
            }
            if (stop == "elif") {
                cond = expression();
                expect_end();
                continue;
            }
            if (stop == "else") {
                expect_end();
                std::vector<std::unique_ptr<Node>> else_body;
                std::string end = parse_block(else_body, {"endif"});
                if (end != "endif") error(pos, "'{% if %}' is not closed (missing '{% endif %}')");
                expect_end();
                n->branches.emplace_back(nullptr, std::move(else_body));
                return n;
            }
            error(pos, "'{% if %}' is not closed (missing '{% endif %}')");
        }
    }

    std::unique_ptr<Node> parse_for(Pos pos) {
        Nest nest(*this, pos);
        auto n = std::make_unique<Node>();
        n->kind = Node::for_;
        n->pos = pos;
        if (peek().kind != Tok::name) error(peek().pos, "expected a loop variable name" + got());
        n->var = next().text;
        if (!is_name("in")) error(peek().pos, "expected 'in'" + got());
        next();
        n->expr = expression();
        expect_end();
        std::string stop = parse_block(n->body, {"else", "endfor"});
        if (stop == "else") {
            expect_end();
            stop = parse_block(n->else_body, {"endfor"});
        }
        if (stop != "endfor") error(pos, "'{% for %}' is not closed (missing '{% endfor %}')");
        expect_end();
        return n;
    }

    std::unique_ptr<Node> parse_set(Pos pos) {
        auto n = std::make_unique<Node>();
        n->kind = Node::set;
        n->pos = pos;
        if (peek().kind != Tok::name) error(peek().pos, "expected a variable name" + got());
        n->var = next().text;
        expect_op("=");
        n->expr = expression();
        expect_end();
        return n;
    }

    ExprPtr make(Expr::Kind k, Pos pos) {
        auto e = std::make_unique<Expr>();
        e->kind = k;
        e->pos = pos;
        return e;
    }

    ExprPtr binary(std::string op, ExprPtr a, ExprPtr b, Pos pos) {
        auto e = make(Expr::binary, pos);
        e->name = std::move(op);
        e->a = std::move(a);
        e->b = std::move(b);
        return e;
    }

    ExprPtr expression() {
        Nest nest(*this, peek().pos);
        ExprPtr e = or_expr();
        if (is_name("if")) { // a if cond else b
            Pos pos = next().pos;
            auto c = make(Expr::cond, pos);
            c->b = or_expr();
            c->a = std::move(e);
            if (is_name("else")) {
                next();
                c->c = or_expr();
            }
            return c;
        }
        return e;
    }

    ExprPtr or_expr() {
        ExprPtr e = and_expr();
        while (is_name("or")) {
            Pos pos = next().pos;
            e = binary("or", std::move(e), and_expr(), pos);
        }
        return e;
    }

    ExprPtr and_expr() {
        ExprPtr e = not_expr();
        while (is_name("and")) {
            Pos pos = next().pos;
            e = binary("and", std::move(e), not_expr(), pos);
        }
        return e;
    }

    ExprPtr not_expr() {
        if (is_name("not")) {
            Pos pos = next().pos;
            auto e = make(Expr::unary, pos);
            e->name = "not";
            e->a = not_expr();
            return e;
        }
        return compare();
    }

    ExprPtr compare() {
        ExprPtr e = concat();
        for (;;) {
            Pos pos = peek().pos;
            if (peek().kind == Tok::op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                           peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
                std::string op = next().text;
                e = binary(op, std::move(e), concat(), pos);
            } else if (is_name("in")) {
                next();
                e = binary("in", std::move(e), concat(), pos);
            } else if (is_name("not") && t_ + 1 < toks_->size() && (*toks_)[t_ + 1].kind == Tok::name && (*toks_)[t_ + 1].text == "in") {
                next();
                next();
                e = binary("not in", std::move(e), concat(), pos);
            } else {
                return e;
            }
        }
    }

    ExprPtr concat() {
        ExprPtr e = additive();
        while (is_op("~")) {
            Pos pos = next().pos;
            e = binary("~", std::move(e), additive(), pos);
        }
        return e;
    }

    ExprPtr additive() {
        ExprPtr e = multiplicative();
        while (is_op("+") || is_op("-")) {
            Pos pos = peek().pos;
            std::string op = next().text;
            e = binary(op, std::move(e), multiplicative(), pos);
        }
        return e;
    }

    ExprPtr multiplicative() {
        ExprPtr e = unary();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            Pos pos = peek().pos;
            std::string op = next().text;
            e = binary(op, std::move(e), unary(), pos);
        }
        return e;
    }

    ExprPtr unary() {
        if (is_op("-")) {
            Nest nest(*this, peek().pos);
            Pos pos = next().pos;
            auto e = make(Expr::unary, pos);
            e->name = "-";
            e->a = unary();
            return e;
        }
        return postfix();
    }

    ExprPtr postfix() {
        ExprPtr e = primary();
        for (;;) {
            Pos pos = peek().pos;
            if (is_op(".")) {
                next();
                if (peek().kind != Tok::name && peek().kind != Tok::integer) error(peek().pos, "expected an attribute name after '.'" + got());
                auto a = make(Expr::attr, pos);
                a->name = next().text;
                a->a = std::move(e);
                e = std::move(a);
            } else if (is_op("[")) {
                next();
                auto a = make(Expr::index, pos);
                a->a = std::move(e);
                a->b = expression();
                expect_op("]");
                e = std::move(a);
            } else if (is_op("|")) {
                next();
                if (peek().kind != Tok::name) error(peek().pos, "expected a filter name after '|'" + got());
                auto f = make(Expr::filter, pos);
                f->name = next().text;
                f->a = std::move(e);
                if (is_op("(")) f->args = call_args();
                e = std::move(f);
            } else if (is_name("is")) {
                next();
                auto t = make(Expr::test, pos);
                if (is_name("not")) {
                    next();
                    t->negate = true;
                }
                if (peek().kind != Tok::name) error(peek().pos, "expected a test name after 'is'" + got());
                t->name = next().text;
                t->a = std::move(e);
                e = std::move(t);
            } else {
                return e;
            }
        }
    }

    std::vector<ExprPtr> call_args() {
        expect_op("(");
        std::vector<ExprPtr> args;
        while (!is_op(")")) {
            // keyword arguments (`default(x, boolean=true)`) are accepted positionally
            if (peek().kind == Tok::name && t_ + 1 < toks_->size() && (*toks_)[t_ + 1].kind == Tok::op && (*toks_)[t_ + 1].text == "=") {
                next();
                next();
            }
            args.push_back(expression());
            if (!is_op(",")) break;
            next();
        }
        expect_op(")");
        return args;
    }

    ExprPtr primary() {
        const Token &t = peek();
        Pos pos = t.pos;
        switch (t.kind) {
        case Tok::string: {
            auto e = make(Expr::literal, pos);
            e->value = json::string(next().text);
            return e;
        }
        case Tok::integer: {
            auto e = make(Expr::literal, pos);
            e->value = static_cast<int64_t>(std::stoll(next().text));
            return e;
        }
        case Tok::number: {
            auto e = make(Expr::literal, pos);
            e->value = std::stod(next().text);
            return e;
        }
        case Tok::name: {
            std::string n = next().text;
            auto e = make(Expr::literal, pos);
            if (n == "true" || n == "True") e->value = true;
            else if (n == "false" || n == "False") e->value = false;
            else if (n == "none" || n == "None") e->value = nullptr;
            else {
                e->kind = Expr::var;
                e->name = n;
            }
            return e;
        }
        case Tok::op:
            if (t.text == "(") {
                next();
                ExprPtr e = expression();
                expect_op(")");
                return e;
            }
            if (t.text == "[") {
                next();
                auto e = make(Expr::list, pos);
                while (!is_op("]")) {
                    e->args.push_back(expression());
                    if (!is_op(",")) break;
                    next();
                }
                expect_op("]");
                return e;
            }
            if (t.text == "{") {
                next();
                auto e = make(Expr::dict, pos);
                while (!is_op("}")) {
                    e->args.push_back(expression());
                    expect_op(":");
                    e->args.push_back(expression());
                    if (!is_op(",")) break;
                    next();
                }
                expect_op("}");
                return e;
            }
            break;
        case Tok::end: error(pos, "unexpected end of expression");
        }
        error(pos, "unexpected '" + t.text + "'");
    }
};

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

std::string to_display(const json::value &v) {
    switch (v.kind()) {
    case json::kind::string: return std::string(v.get_string());
    case json::kind::null: return "none";
    case json::kind::bool_: return v.get_bool() ? "true" : "false";
    case json::kind::int64: return std::to_string(v.get_int64());
    case json::kind::uint64: return std::to_string(v.get_uint64());
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
    default: return json::serialize(v);
    }
}

class Renderer {
public:
    Renderer(const std::string &name, const json::object &context) : name_(name) { scopes_.push_back(context); }

    void render(const std::vector<std::unique_ptr<Node>> &nodes, Segments &out) {
        for (const auto &n : nodes) render(*n, out);
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
        if (literal && !out.empty() && out.back().literal) out.back().text += text;
        else out.push_back(Segment{std::move(text), literal, literal ? 0 : pos.line, literal ? 0 : pos.col});
    }

    const json::value &defined(const Value &v, Pos pos) const {
        if (v.undefined) error(pos, "undefined value: " + v.what);
        return v.v;
    }

    bool truthy(const Value &v, Pos pos) const {
        const json::value &j = defined(v, pos);
        switch (j.kind()) {
        case json::kind::null: return false;
        case json::kind::bool_: return j.get_bool();
        case json::kind::int64: return j.get_int64() != 0;
        case json::kind::uint64: return j.get_uint64() != 0;
        case json::kind::double_: return j.get_double() != 0.0;
        case json::kind::string: return !j.get_string().empty();
        case json::kind::array: return !j.get_array().empty();
        case json::kind::object: return !j.get_object().empty();
        }
        return false;
    }

    void render(const Node &n, Segments &out) {
        switch (n.kind) {
        case Node::text_node: append(out, n.text, true); return;
        case Node::output: append(out, to_display(defined(eval(*n.expr), n.expr->pos)), false, n.pos); return;
        case Node::block: render(n.body, out); return;
        case Node::set: scopes_.back()[n.var] = defined(eval(*n.expr), n.expr->pos); return;
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
            if (seq.is_array()) items = seq.get_array();
            else if (seq.is_object())
                for (auto &kv : seq.get_object()) items.push_back(json::string(kv.key()));
            else if (seq.is_string())
                for (char c : seq.get_string()) items.push_back(json::string(std::string(1, c)));
            else error(n.expr->pos, "cannot iterate over " + to_display(seq));
            if (items.empty()) {
                render(n.else_body, out);
                return;
            }
            scopes_.emplace_back();
            for (size_t i = 0; i < items.size(); ++i) {
                auto &scope = scopes_.back();
                scope[n.var] = items[i];
                scope["loop"] = json::object{{"index", i + 1}, {"index0", i}, {"first", i == 0}, {"last", i + 1 == items.size()},
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
        case Expr::var: return e.name;
        case Expr::attr: return describe(*e.a) + "." + e.name;
        case Expr::index: return describe(*e.a) + "[...]";
        default: return "value";
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
            if (key.is_int64()) i = key.get_int64();
            else if (key.is_string()) {
                try {
                    size_t used = 0;
                    i = std::stoll(std::string(key.get_string()), &used);
                    if (used != key.get_string().size()) throw std::invalid_argument("x");
                } catch (const std::exception &) {
                    return Value::missing("'" + where + "' has no attribute '" + std::string(key.get_string()) + "'");
                }
            } else return Value::missing("'" + where + "' cannot be indexed by " + to_display(key));
            int64_t size = b.is_array() ? static_cast<int64_t>(b.get_array().size()) : static_cast<int64_t>(b.get_string().size());
            if (i < 0) i += size;
            if (i < 0 || i >= size) return Value::missing("index " + std::to_string(i) + " is out of range for '" + where + "'");
            if (b.is_array()) return Value::of(b.get_array()[static_cast<size_t>(i)]);
            return Value::of(json::string(std::string(1, b.get_string()[static_cast<size_t>(i)])));
        }
        return Value::missing("'" + where + "' (" + to_display(b) + ") has no attribute '" + to_display(key) + "'");
    }

    static bool is_number(const json::value &v) { return v.is_int64() || v.is_uint64() || v.is_double(); }
    static double num(const json::value &v) { return v.is_int64() ? static_cast<double>(v.get_int64()) : v.is_uint64() ? static_cast<double>(v.get_uint64()) : v.get_double(); }

    static bool equal(const json::value &a, const json::value &b) {
        if (is_number(a) && is_number(b)) return num(a) == num(b);
        return a == b;
    }

    Value arithmetic(const std::string &op, const json::value &a, const json::value &b, Pos pos) const {
        if (op == "+" && a.is_string() && b.is_string()) return Value::of(json::string(std::string(a.get_string()) + std::string(b.get_string())));
        if (op == "+" && a.is_array() && b.is_array()) {
            json::array r = a.get_array();
            for (auto &x : b.get_array()) r.push_back(x);
            return Value::of(r);
        }
        if (!is_number(a) || !is_number(b))
            error(pos, "cannot apply '" + op + "' to " + to_display(a) + " and " + to_display(b));
        bool ints = a.is_int64() && b.is_int64();
        if (ints) {
            int64_t x = a.get_int64(), y = b.get_int64();
            if (op == "+") return Value::of(x + y);
            if (op == "-") return Value::of(x - y);
            if (op == "*") return Value::of(x * y);
            if ((op == "//" || op == "%") && y == 0) error(pos, "division by zero");
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
        case Expr::literal: return Value::of(e.value);
        case Expr::var: return lookup(e.name);
        case Expr::attr: return member(eval(*e.a), *e.a, json::string(e.name), e.pos);
        case Expr::index: {
            Value base = eval(*e.a);
            return member(base, *e.a, defined(eval(*e.b), e.b->pos), e.pos);
        }
        case Expr::list: {
            json::array a;
            for (auto &x : e.args) a.push_back(defined(eval(*x), x->pos));
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
            if (j.is_int64()) return Value::of(-j.get_int64());
            if (is_number(j)) return Value::of(-num(j));
            error(e.pos, "cannot negate " + to_display(j));
        }
        case Expr::binary: return binary(e);
        case Expr::test: return test(e);
        case Expr::filter: return filter(e);
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
            if (b.is_string() && a.is_string()) found = std::string_view(b.get_string()).find(std::string_view(a.get_string())) != std::string_view::npos;
            else if (b.is_array()) found = std::any_of(b.get_array().begin(), b.get_array().end(), [&](const json::value &x) { return equal(x, a); });
            else if (b.is_object() && a.is_string()) found = b.get_object().contains(a.get_string());
            else error(e.pos, "cannot test membership in " + to_display(b));
            return Value::of(op == "in" ? found : !found);
        }
        if (op == "<" || op == ">" || op == "<=" || op == ">=") {
            int cmp;
            if (is_number(a) && is_number(b)) cmp = num(a) < num(b) ? -1 : num(a) > num(b) ? 1 : 0;
            else if (a.is_string() && b.is_string()) cmp = std::string_view(a.get_string()).compare(std::string_view(b.get_string()));
            else error(e.pos, "cannot compare " + to_display(a) + " with " + to_display(b));
            bool r = op == "<" ? cmp < 0 : op == ">" ? cmp > 0 : op == "<=" ? cmp <= 0 : cmp >= 0;
            return Value::of(r);
        }
        return arithmetic(op, a, b, e.pos);
    }

    Value test(const Expr &e) {
        Value v = eval(*e.a);
        bool r;
        const std::string &t = e.name;
        if (t == "defined") r = !v.undefined;
        else if (t == "undefined") r = v.undefined;
        else {
            const json::value &j = defined(v, e.a->pos);
            if (t == "none") r = j.is_null();
            else if (t == "string") r = j.is_string();
            else if (t == "number") r = is_number(j);
            else if (t == "mapping") r = j.is_object();
            else if (t == "sequence" || t == "iterable") r = j.is_array() || j.is_string() || (t == "iterable" && j.is_object());
            else if (t == "true") r = j.is_bool() && j.get_bool();
            else if (t == "false") r = j.is_bool() && !j.get_bool();
            else if (t == "even" || t == "odd") {
                if (!j.is_int64()) error(e.pos, "test '" + t + "' needs an integer");
                r = (j.get_int64() % 2 == 0) == (t == "even");
            } else error(e.pos, "unknown test '" + t + "'");
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
            for (char &c : s) c = static_cast<char>(f == "lower" ? std::tolower(static_cast<unsigned char>(c)) : std::toupper(static_cast<unsigned char>(c)));
            return Value::of(json::string(s));
        }
        if (f == "capitalize") {
            std::string s = str();
            for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i == 0 ? std::toupper(static_cast<unsigned char>(s[i])) : std::tolower(static_cast<unsigned char>(s[i])));
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
            if (is_number(v)) return Value::of(static_cast<int64_t>(num(v)));
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
        error(e.pos, "unknown filter '" + f + "' (supported: default, lower, upper, capitalize, trim, replace, join, length, count, tojson, string, int, first, last)");
    }
};

// ---------------------------------------------------------------------------------------------

Template::Template(std::string source, std::string name) : name_(std::move(name)) {
    // MiniJinja drops one trailing newline of the template.
    if (!source.empty() && source.back() == '\n') {
        source.pop_back();
        if (!source.empty() && source.back() == '\r') source.pop_back();
    }
    Lexer lexer(source, name_);
    Parser parser(lexer.run(), name_);
    root_ = parser.run();
}

Template::~Template() = default;
Template::Template(Template &&) noexcept = default;
Template &Template::operator=(Template &&) noexcept = default;

Segments Template::render(const json::object &context) const {
    Segments out;
    Renderer r(name_, context);
    r.render(root_->body, out);
    return out;
}

namespace {

void sketch_nodes(const std::vector<std::unique_ptr<Node>> &nodes, Segments &out) {
    for (const auto &n : nodes) {
        switch (n->kind) {
        case Node::text_node:
            if (!out.empty() && out.back().literal) out.back().text += n->text;
            else out.push_back(Segment{n->text, true, 0, 0});
            break;
        case Node::output: out.push_back(Segment{"x", false, n->pos.line, n->pos.col}); break;
        case Node::block:
        case Node::for_: sketch_nodes(n->body, out); break;
        case Node::if_:
            if (!n->branches.empty()) sketch_nodes(n->branches.front().second, out);
            break;
        case Node::set: break;
        }
    }
}

} // namespace

Segments Template::sketch() const {
    Segments out;
    sketch_nodes(root_->body, out);
    return out;
}

std::string to_text(const Segments &segments) {
    std::string out;
    for (auto &s : segments) out += s.text;
    return out;
}

std::string render_text(const std::string &source, const std::string &name, const json::object &context) {
    return to_text(Template(source, name).render(context));
}

std::string render_shell(const std::string &source, const std::string &name, const json::object &context) {
    return to_shell(Template(source, name).render(context), name);
}

} // namespace vik::tmpl
