#pragma once
// A look at one JSON line without building a tree: the string and integer members at the top
// level and one object level down (`item.type`), gathered by boost::json's SAX parser.
//
// Most of what an agent CLI prints is a handful of line shapes with a few flat members (a
// message, a token count). Building a document for each of those lines was the largest part of
// the host's CPU per event when an agent floods; a mapper reads them from a FlatLine instead and
// parses into a tree only the lines a FlatLine cannot hold (arrays, deeper objects, members the
// event keeps as `raw`).

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace vik::agents {

class FlatLine {
  public:
    FlatLine();
    ~FlatLine();
    FlatLine(const FlatLine &) = delete;
    FlatLine &operator=(const FlatLine &) = delete;

    // Reads `line`; true when it is one valid JSON object whose members (and their objects'
    // members) are all strings or integers, at most kMaxFields of them in at most kMaxObjects
    // objects. False otherwise: the
    // caller parses the line the usual way, which also says what is wrong with it.
    bool read(std::string_view line);

    // A member's text by path ("type", "item.text"); nullptr when absent or not a string.
    const std::string *text(std::string_view path) const;
    // A member's integer by path; nullptr when absent or not an integer.
    const int64_t *integer(std::string_view path) const;
    // Whether a member has this path (of any type a FlatLine holds).
    bool has(std::string_view path) const;

    // Enough for the common lines of every CLI here; small, since each session has its own.
    static constexpr size_t kMaxFields = 12;
    static constexpr size_t kMaxObjects = 4;

    struct Field {
        std::string key, text;
        int64_t number = 0;
        int parent = -1; // the index of its object's key in parents_, -1 at the top level
        bool is_text = false;
    };
    struct Scan; // the SAX handler (flat_line.cpp)

  private:
    const Field *find(std::string_view path) const;
    // Fields are kept (with their strings' buffers) from line to line; `count_` are this line's.
    std::array<Field, kMaxFields> fields_;
    size_t count_ = 0;
    std::array<std::string, kMaxObjects> parents_; // the keys of the top-level objects
    size_t parent_count_ = 0;
    struct Parser;
    std::unique_ptr<Parser> parser_;
};

} // namespace vik::agents
