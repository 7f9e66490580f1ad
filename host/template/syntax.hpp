#pragma once
// The template engine's internals, shared by its three stages: the lexer (source → pieces of
// text and tag tokens), the parser (pieces → a tree of nodes and expressions) and the renderer
// (tree + variables → segments). Only template.cpp and those stages include this.

#include "template/template.hpp"

#include <boost/json/value.hpp>

#include <memory>
#include <string>
#include <vector>

namespace vik::tmpl::detail {

namespace json = boost::json;

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

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum Kind { literal, var, attr, index, filter, test, unary, binary, list, dict, cond } kind;
    Pos pos;
    json::value value;         // literal
    std::string name;          // var / attr / filter / test / op
    ExprPtr a, b, c;           // operands
    std::vector<ExprPtr> args; // filter args, list items, dict keys/values (pairs)
    bool negate = false;       // `is not`
};

struct Node {
    enum Kind { text_node, output, if_, for_, set, block } kind = block;
    Pos pos;
    std::string text;                                                             // text
    ExprPtr expr;                                                                 // output / set value / for iterable
    std::vector<std::pair<ExprPtr, std::vector<std::unique_ptr<Node>>>> branches; // if: (cond|null, body)
    std::string var;                                                              // for / set target
    std::vector<std::unique_ptr<Node>> body, else_body;                           // for / block
};

// Source text → pieces (text, `{{ }}` and `{% %}` with their tokens). Throws TemplateError.
std::vector<Piece> lex(const std::string &source, const std::string &name);

// Pieces → the template's root block. Throws TemplateError naming line and column.
std::unique_ptr<Node> parse(std::vector<Piece> pieces, const std::string &name);

// The root block with these variables → segments (literal text and substituted values).
void render(const Node &root, const json::object &context, const std::string &name, Segments &out);

} // namespace vik::tmpl::detail
