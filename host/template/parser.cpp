// Pieces → a tree: text and output nodes, `if/elif/else`, `for` (with `else`), `set`, and
// expressions by precedence. Nesting is bounded (kMaxNesting) so hostile input cannot overflow
// the stack.
#include "template/syntax.hpp"

namespace vik::tmpl::detail {

namespace {

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
            if (++p.depth_ > kMaxNesting)
                p.error(pos, "nested too deeply (more than " + std::to_string(kMaxNesting) + " levels)");
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
            if (kw == "if")
                out.push_back(parse_if(piece.pos));
            else if (kw == "for")
                out.push_back(parse_for(piece.pos));
            else if (kw == "set")
                out.push_back(parse_set(piece.pos));
            else if (kw == "endif" || kw == "endfor" || kw == "elif" || kw == "else")
                error(piece.pos, "unexpected '{% " + kw + " %}' without a matching opening tag");
            else
                error(piece.pos, "unknown statement '" + kw + "' (supported: if, elif, else, for, set)");
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
            } else if (is_name("not") && t_ + 1 < toks_->size() && (*toks_)[t_ + 1].kind == Tok::name &&
                       (*toks_)[t_ + 1].text == "in") {
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
                if (peek().kind != Tok::name && peek().kind != Tok::integer)
                    error(peek().pos, "expected an attribute name after '.'" + got());
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
            if (peek().kind == Tok::name && t_ + 1 < toks_->size() && (*toks_)[t_ + 1].kind == Tok::op &&
                (*toks_)[t_ + 1].text == "=") {
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
            const Token &num = next();
            try {
                e->value = static_cast<int64_t>(std::stoll(num.text));
            } catch (const std::out_of_range &) {
                error(pos, "integer literal " + num.text + " does not fit in 64 bits");
            }
            return e;
        }
        case Tok::number: {
            auto e = make(Expr::literal, pos);
            const Token &num = next();
            try {
                e->value = std::stod(num.text);
            } catch (const std::out_of_range &) {
                error(pos, "number literal " + num.text + " is out of range");
            }
            return e;
        }
        case Tok::name: {
            std::string n = next().text;
            auto e = make(Expr::literal, pos);
            if (n == "true" || n == "True")
                e->value = true;
            else if (n == "false" || n == "False")
                e->value = false;
            else if (n == "none" || n == "None")
                e->value = nullptr;
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
        case Tok::end:
            error(pos, "unexpected end of expression");
        }
        error(pos, "unexpected '" + t.text + "'");
    }
};

} // namespace

std::unique_ptr<Node> parse(std::vector<Piece> pieces, const std::string &name) { return Parser(std::move(pieces), name).run(); }

} // namespace vik::tmpl::detail
