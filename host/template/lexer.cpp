// Template source → pieces: literal text, `{{ expr }}` and `{% stmt %}` with their tokens,
// `{# comments #}` dropped, whitespace control (`{%-`, `-%}`) applied.
#include "template/syntax.hpp"

namespace vik::tmpl::detail {

namespace {

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
            if (strip_next_text)
                text.erase(0, text.find_first_not_of(" \t\r\n") == std::string::npos ? text.size()
                                                                                     : text.find_first_not_of(" \t\r\n"));
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
        while (i_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[i_])))
            advance_to(i_ + 1);
    }

    Token token() {
        Token t;
        t.pos = pos_;
        char c = src_[i_];
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            size_t j = i_;
            while (j < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[j])) || src_[j] == '_'))
                ++j;
            t.kind = Tok::name;
            t.text = src_.substr(i_, j - i_);
            advance_to(j);
            return t;
        }
        if (std::isdigit(static_cast<unsigned char>(c))) {
            size_t j = i_;
            bool dot = false;
            while (j < src_.size() &&
                   (std::isdigit(static_cast<unsigned char>(src_[j])) ||
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

} // namespace

std::vector<Piece> lex(const std::string &source, const std::string &name) { return Lexer(source, name).run(); }

} // namespace vik::tmpl::detail
