// vik/event_text.hpp: header-only helpers (C++17) for writing session events as JSON text
// without a JSON library or a tree per event.
//
//     vik::sdk::EventList events;                 // one line's events, in one reused buffer
//     vik::sdk::EventWriter(events, VIK_EVENT_MESSAGE).text("text", said).end();
//     for (size_t i = 0; i < events.size(); ++i) emit(events[i]);
//
// Strings are escaped as serde_json and Boost.JSON escape them ('"', '\\', and control bytes;
// the text must be UTF-8). Kinds and keys are the caller's own ASCII names, written as given.
#ifndef VIK_EVENT_TEXT_HPP
#define VIK_EVENT_TEXT_HPP

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace vik::sdk {

namespace detail {
// Whether any of the 8 bytes of `w` is below 0x20, '"' or '\\' (an agent's text is long runs of
// plain bytes, checked a word at a time).
inline bool word_needs_escape(uint64_t w) {
    constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    auto has_zero = [](uint64_t v) { return ((v - ones) & ~v & highs) != 0; };
    bool below_space = ((w - ones * 0x20) & ~w & highs) != 0;
    return below_space || has_zero(w ^ (ones * '"')) || has_zero(w ^ (ones * '\\'));
}
} // namespace detail

// `value` as a JSON string (quoted and escaped), appended to `out`.
inline void append_json_string(std::string &out, std::string_view value) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    size_t plain = 0; // the start of the run of bytes that need no escape
    for (size_t i = 0; i < value.size(); ++i) {
        while (i + 8 <= value.size()) {
            uint64_t w;
            std::memcpy(&w, value.data() + i, 8);
            if (detail::word_needs_escape(w)) break;
            i += 8;
        }
        if (i == value.size()) break;
        auto c = static_cast<unsigned char>(value[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(value.data() + plain, i - plain);
        plain = i + 1;
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
    }
    out.append(value.data() + plain, value.size() - plain);
    out += '"';
}

// Texts in one buffer: no allocation per text once the buffer has grown. The events of one
// agent output line, or a batch of them.
class EventList {
  public:
    void clear() {
        text_.clear();
        ends_.clear();
    }
    void push_back(std::string_view event_json) {
        text_.append(event_json);
        ends_.push_back(text_.size());
    }
    size_t size() const { return ends_.size(); }
    bool empty() const { return ends_.empty(); }
    std::string_view operator[](size_t i) const {
        size_t begin = i == 0 ? 0 : ends_[i - 1];
        return std::string_view(text_).substr(begin, ends_[i] - begin);
    }
    std::vector<std::string> strings() const {
        std::vector<std::string> out;
        out.reserve(size());
        for (size_t i = 0; i < size(); ++i)
            out.emplace_back((*this)[i]);
        return out;
    }
    void swap(EventList &other) noexcept {
        text_.swap(other.text_);
        ends_.swap(other.ends_);
    }
    // Lets go of a large buffer (after a burst), keeping a small one.
    void shrink_if_over(size_t bytes) {
        if (text_.capacity() > bytes) text_.shrink_to_fit();
        if (ends_.capacity() * sizeof(size_t) > bytes) ends_.shrink_to_fit();
    }

  private:
    friend class EventWriter;
    std::string text_;
    std::vector<size_t> ends_;
};

// Writes one event, {"kind":<kind>, members in call order}, at the end of an EventList.
class EventWriter {
  public:
    // Names are string_views: a literal's length is known where it is written (no strlen per
    // event, which shows when an agent floods).
    EventWriter(EventList &list, std::string_view kind) : list_(list) {
        list_.text_.append("{\"kind\":\"", 9);
        list_.text_.append(kind);
        list_.text_ += '"';
    }
    EventWriter &text(std::string_view key, std::string_view value) {
        member(key);
        append_json_string(list_.text_, value);
        return *this;
    }
    EventWriter &integer(std::string_view key, int64_t value) {
        member(key);
        char digits[24];
        auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
        list_.text_.append(digits, end);
        return *this;
    }
    // A value that is JSON text already (an object, an array, a number...), written as given.
    EventWriter &json(std::string_view key, std::string_view json_text) {
        member(key);
        list_.text_.append(json_text);
        return *this;
    }
    // `,"key":` and the buffer, to append a value written some other way (a JSON library's
    // serializer); the value must be one whole JSON value.
    std::string &member(std::string_view key) {
        list_.text_.append(",\"", 2);
        list_.text_.append(key);
        list_.text_.append("\":", 2);
        return list_.text_;
    }
    void end() {
        list_.text_ += '}';
        list_.ends_.push_back(list_.text_.size());
    }

  private:
    EventList &list_;
};

} // namespace vik::sdk

#endif
