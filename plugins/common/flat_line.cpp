#include "flat_line.hpp"

#include <boost/json/basic_parser_impl.hpp>

namespace vik::agents {

// Returning false from a callback stops the parse: a line that is not flat is left at its first
// array, float, bool, null or deeper object, and parsed the usual way by the caller.
struct FlatLine::Scan {
    constexpr static std::size_t max_object_size = std::size_t(-1);
    constexpr static std::size_t max_array_size = std::size_t(-1);
    constexpr static std::size_t max_key_size = std::size_t(-1);
    constexpr static std::size_t max_string_size = std::size_t(-1);
    using ec_t = boost::system::error_code;

    FlatLine *line = nullptr;
    int depth = 0;
    int parent = -1; // the object being read (depth 2): its index in line->parents_
    bool root_is_object = false;
    std::string key, part; // the member's key, a string's pieces

    // Whether `key` may start a top-level member: not one with a dot (it would read as a member
    // of an object, "item.type"), and not a second member of one name (a tree keeps the last
    // value of a duplicate key, whatever its type; a flat look would mix the two).
    bool top_level_key_ok() const {
        if (key.find('.') != std::string::npos) return false;
        for (size_t i = 0; i < line->count_; ++i)
            if (line->fields_[i].parent < 0 && line->fields_[i].key == key) return false;
        for (size_t i = 0; i < line->parent_count_; ++i)
            if (line->parents_[i] == key) return false;
        return true;
    }

    // Keys are swapped in, not copied: every string keeps a buffer for the next line.
    Field *next_field() {
        if (line->count_ == kMaxFields) return nullptr;
        if (depth == 1 && !top_level_key_ok()) return nullptr;
        Field &f = line->fields_[line->count_++];
        f.key.swap(key);
        f.parent = depth == 2 ? parent : -1;
        key.clear();
        return &f;
    }

    bool on_document_begin(ec_t &) { return true; }
    bool on_document_end(ec_t &) { return true; }
    bool on_object_begin(ec_t &) {
        if (depth == 0) root_is_object = true;
        if (depth == 1) {
            if (line->parent_count_ == kMaxObjects || !top_level_key_ok()) return false;
            parent = static_cast<int>(line->parent_count_++);
            line->parents_[static_cast<size_t>(parent)].swap(key);
        }
        if (depth >= 2) return false;
        key.clear();
        ++depth;
        return true;
    }
    bool on_object_end(std::size_t, ec_t &) {
        if (--depth == 1) parent = -1;
        return true;
    }
    bool on_array_begin(ec_t &) { return false; }
    bool on_array_end(std::size_t, ec_t &) { return false; }
    bool on_key_part(boost::json::string_view s, std::size_t, ec_t &) {
        key.append(s.data(), s.size());
        return true;
    }
    bool on_key(boost::json::string_view s, std::size_t, ec_t &) {
        key.append(s.data(), s.size());
        return true;
    }
    bool on_string_part(boost::json::string_view s, std::size_t, ec_t &) {
        part.append(s.data(), s.size());
        return true;
    }
    bool on_string(boost::json::string_view s, std::size_t, ec_t &) {
        if (depth == 0) return false;
        Field *f = next_field();
        if (f == nullptr) return false;
        f->is_text = true;
        if (part.empty()) {
            f->text.assign(s.data(), s.size());
        } else {
            part.append(s.data(), s.size());
            f->text.swap(part); // both keep a buffer for the next line
            part.clear();
        }
        return true;
    }
    bool number(int64_t n) {
        if (depth == 0) return false;
        Field *f = next_field();
        if (f == nullptr) return false;
        f->is_text = false;
        f->number = n;
        return true;
    }
    bool on_number_part(boost::json::string_view, ec_t &) { return true; }
    bool on_int64(int64_t v, boost::json::string_view, ec_t &) { return number(v); }
    bool on_uint64(uint64_t v, boost::json::string_view, ec_t &) {
        return v <= static_cast<uint64_t>(INT64_MAX) && number(static_cast<int64_t>(v));
    }
    bool on_double(double, boost::json::string_view, ec_t &) { return false; }
    bool on_bool(bool, ec_t &) { return false; }
    bool on_null(ec_t &) { return false; }
    bool on_comment_part(boost::json::string_view, ec_t &) { return false; }
    bool on_comment(boost::json::string_view, ec_t &) { return false; }
};

struct FlatLine::Parser {
    boost::json::basic_parser<Scan> parser{boost::json::parse_options{}};
};

FlatLine::FlatLine() : parser_(std::make_unique<Parser>()) {}
FlatLine::~FlatLine() = default;

bool FlatLine::read(std::string_view line) {
    // Strings keep their buffers from line to line, except those a rare huge line grew.
    constexpr size_t kept = 64 * 1024;
    for (size_t i = 0; i < count_; ++i)
        for (std::string *s : {&fields_[i].key, &fields_[i].text})
            if (s->capacity() > kept) std::string().swap(*s);
    count_ = 0;
    parent_count_ = 0;
    auto &p = parser_->parser;
    p.reset();
    Scan &scan = p.handler();
    scan.line = this;
    scan.depth = 0;
    scan.parent = -1;
    scan.root_is_object = false;
    scan.key.clear();
    scan.part.clear();
    boost::system::error_code ec;
    // write_some stops after one document: what follows it (not JSON) must not be taken for part of it.
    size_t used = p.write_some(false, line.data(), line.size(), ec);
    if (ec || !scan.root_is_object || line.find_first_not_of(" \t\r\n", used) != std::string_view::npos) {
        count_ = 0;
        return false;
    }
    return true;
}

const FlatLine::Field *FlatLine::find(std::string_view path) const {
    // "item.text": the member "text" of the top-level object "item".
    size_t dot = path.find('.');
    std::string_view object = dot == std::string_view::npos ? std::string_view() : path.substr(0, dot);
    std::string_view key = dot == std::string_view::npos ? path : path.substr(dot + 1);
    // The last of equal paths, as a parsed tree keeps the last of duplicate keys.
    for (size_t i = count_; i-- > 0;) {
        const Field &f = fields_[i];
        if (f.key != key) continue;
        if (dot == std::string_view::npos ? f.parent < 0 : f.parent >= 0 && parents_[static_cast<size_t>(f.parent)] == object)
            return &f;
    }
    return nullptr;
}

const std::string *FlatLine::text(std::string_view path) const {
    const Field *f = find(path);
    return f && f->is_text ? &f->text : nullptr;
}

const int64_t *FlatLine::integer(std::string_view path) const {
    const Field *f = find(path);
    return f && !f->is_text ? &f->number : nullptr;
}

bool FlatLine::has(std::string_view path) const { return find(path) != nullptr; }

} // namespace vik::agents
