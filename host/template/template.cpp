// The template engine's public face: a Template is lexed (lexer.cpp) and parsed (parser.cpp)
// once, then rendered (renderer.cpp) as often as needed.
#include "template/syntax.hpp"

#include <boost/json.hpp>

namespace vik::tmpl {

namespace json = boost::json;
using detail::Node;

// ---------------------------------------------------------------------------------------------

Template::Template(std::string source, std::string name) : name_(std::move(name)) {
    // MiniJinja drops one trailing newline of the template.
    if (!source.empty() && source.back() == '\n') {
        source.pop_back();
        if (!source.empty() && source.back() == '\r') source.pop_back();
    }
    root_ = detail::parse(detail::lex(source, name_), name_);
}

Template::~Template() = default;
Template::Template(Template &&) noexcept = default;
Template &Template::operator=(Template &&) noexcept = default;

Segments Template::render(const json::object &context) const {
    Segments out;
    detail::render(*root_, context, name_, out);
    return out;
}

namespace {

void sketch_nodes(const std::vector<std::unique_ptr<Node>> &nodes, Segments &out) {
    for (const auto &n : nodes) {
        switch (n->kind) {
        case Node::text_node:
            if (!out.empty() && out.back().literal)
                out.back().text += n->text;
            else
                out.push_back(Segment{n->text, true, 0, 0});
            break;
        case Node::output:
            out.push_back(Segment{"x", false, n->pos.line, n->pos.col});
            break;
        case Node::block:
        case Node::for_:
            sketch_nodes(n->body, out);
            break;
        case Node::if_:
            if (!n->branches.empty()) sketch_nodes(n->branches.front().second, out);
            break;
        case Node::set:
            break;
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
    for (auto &s : segments)
        out += s.text;
    return out;
}

std::string render_text(const std::string &source, const std::string &name, const json::object &context) {
    return to_text(Template(source, name).render(context));
}

std::string render_shell(const std::string &source, const std::string &name, const json::object &context) {
    return to_shell(Template(source, name).render(context), name);
}

} // namespace vik::tmpl
