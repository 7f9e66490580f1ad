// vik/flat_json.hpp: header-only (C++17) reading of one flat JSON object without a JSON library,
// a tree or an allocation per line.
//
//     vik::sdk::FlatJson line;                    // one per session: it keeps its buffers
//     if (line.read(text)) {                      // false: not flat (or not JSON): parse it whole
//         const std::string_view *type = line.text("type");
//         const int64_t *n = line.integer("usage.input_tokens");
//     }
//
// Most lines an agent CLI prints, and most events a runtime plugin writes, are objects of a few
// strings and integers, one object level deep at most. Reading those with a general parser (a
// tree, or a SAX parser's callbacks) was the largest part of the CPU a flooding agent costs. A
// FlatJson reads exactly that shape, strictly by RFC 8259 (UTF-8 checked, no comments, no
// trailing commas), and gives up on anything else: arrays, floats, true/false/null, \u escapes,
// objects nested deeper than kMaxDepth, more than kMaxMembers members, a key with a '.' (paths
// would be ambiguous) or a key twice in one object (a tree keeps the last, whatever its type).
// Giving up is never an answer about validity: the caller then parses the line the usual way,
// which also says what is wrong with it. What it accepts, a JSON parser reads as the same values
// (fuzz/flat_json.cpp and tests/sdk/flat_json_test.cpp check that against Boost.JSON).
#ifndef VIK_FLAT_JSON_HPP
#define VIK_FLAT_JSON_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace vik::sdk {

class FlatJson {
  public:
    enum class Type : uint8_t { text, integer, object };
    struct Member {
        std::string_view key;  // unescaped
        std::string_view text; // Type::text: the value, unescaped
        int64_t integer = 0;   // Type::integer
        int parent = -1;       // the index of the object member it belongs to; -1: the top level
        Type type = Type::text;
    };
    static constexpr size_t kMaxMembers = 16; // objects count as members
    static constexpr int kMaxDepth = 2;       // the top level and one object level below it

    FlatJson() = default;
    // A copy or a move starts empty: the members' views may point into the other object's own
    // buffer (short unescaped strings live inside it), which a copy must not keep.
    FlatJson(const FlatJson &) : FlatJson() {}
    FlatJson &operator=(const FlatJson &) {
        count_ = 0;
        spans_lines_ = false;
        return *this;
    }
    ~FlatJson() = default;

    // True when `line` is one JSON object of that shape (surrounding whitespace allowed). The
    // views stay valid until the next read() and only while `line` lives (escaped strings are
    // unescaped into the FlatJson's own buffer).
    bool read(std::string_view line) {
        count_ = 0;
        spans_lines_ = false;
        if (unescaped_.capacity() > kKeptBytes) std::string().swap(unescaped_); // a rare huge line's
        unescaped_.clear();
        line_size_ = line.size();
        p_ = line.data();
        end_ = p_ + line.size();
        skip_ws();
        bool ok = object(-1, 1);
        if (ok) skip_ws();
        if (!ok || p_ != end_) {
            count_ = 0;
            return false;
        }
        return true;
    }

    // Whether the whitespace between its tokens held a line break (inside strings one is always
    // escaped): such a line would not stay one line if written on as it came.
    bool spans_lines() const { return spans_lines_; }

    size_t size() const { return count_; }
    const Member &operator[](size_t i) const { return members_[i]; }

    // A member by path: "type" at the top level, "item.text" in the top-level object "item".
    const Member *find(std::string_view path) const {
        size_t dot = path.find('.');
        std::string_view object = dot == std::string_view::npos ? std::string_view() : path.substr(0, dot);
        std::string_view key = dot == std::string_view::npos ? path : path.substr(dot + 1);
        for (size_t i = 0; i < count_; ++i) {
            const Member &m = members_[i];
            if (m.key != key) continue; // string_view: compared length first
            if (dot == std::string_view::npos ? m.parent < 0
                                              : m.parent >= 0 && members_[static_cast<size_t>(m.parent)].key == object)
                return &m;
        }
        return nullptr;
    }
    // A string member's value; nullptr when absent or not a string.
    const std::string_view *text(std::string_view path) const {
        const Member *m = find(path);
        return m && m->type == Type::text ? &m->text : nullptr;
    }
    // An integer member's value; nullptr when absent or not an integer.
    const int64_t *integer(std::string_view path) const {
        const Member *m = find(path);
        return m && m->type == Type::integer ? &m->integer : nullptr;
    }
    bool has(std::string_view path) const { return find(path) != nullptr; }

  private:
    static constexpr size_t kKeptBytes = 64 * 1024;

    void skip_ws() {
        for (; p_ != end_; ++p_) {
            if (*p_ == ' ' || *p_ == '\t') continue;
            if (*p_ != '\n' && *p_ != '\r') return;
            spans_lines_ = true;
        }
    }

    // At '{': its members, and those of the objects in it, appended to members_.
    bool object(int parent, int depth) {
        if (p_ == end_ || *p_ != '{') return false;
        ++p_;
        skip_ws();
        if (p_ != end_ && *p_ == '}') return ++p_, true;
        size_t first = count_;
        for (;;) {
            std::string_view key;
            if (p_ == end_ || *p_ != '"' || !string(key)) return false;
            for (char k : key) // keys are short: a loop, not a memchr call
                if (k == '.') return false;
            for (size_t i = first; i < count_; ++i)
                if (members_[i].parent == parent && members_[i].key == key) return false;
            skip_ws();
            if (p_ == end_ || *p_ != ':') return false;
            ++p_;
            skip_ws();
            if (p_ == end_ || count_ == kMaxMembers) return false;
            size_t index = count_++;
            Member &m = members_[index]; // an array element: stays put while nested members are added
            m.key = key;
            m.text = std::string_view();
            m.integer = 0;
            m.parent = parent;
            char c = *p_;
            if (c == '"') {
                m.type = Type::text;
                if (!string(m.text)) return false;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                m.type = Type::integer;
                if (!integer(m.integer)) return false;
            } else if (c == '{' && depth < kMaxDepth) {
                m.type = Type::object;
                if (!object(static_cast<int>(index), depth + 1)) return false;
            } else {
                return false;
            }
            skip_ws();
            if (p_ == end_) return false;
            if (*p_ == '}') return ++p_, true;
            if (*p_ != ',') return false;
            ++p_;
            skip_ws();
        }
    }

    // An integer that fits int64 without doubt (at most 18 digits; "-0", fractions and exponents
    // give up: parsers differ on them or make them doubles).
    bool integer(int64_t &out) {
        bool negative = *p_ == '-';
        if (negative) ++p_;
        const char *digits = p_;
        while (p_ != end_ && *p_ >= '0' && *p_ <= '9')
            ++p_;
        size_t n = static_cast<size_t>(p_ - digits);
        if (n == 0 || n > 18 || (digits[0] == '0' && (n > 1 || negative))) return false;
        if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
        int64_t v = 0;
        for (const char *d = digits; d != p_; ++d)
            v = v * 10 + (*d - '0');
        out = negative ? -v : v;
        return true;
    }

    // Past the printable ASCII bytes that stand for themselves in a string: 16 at a time with
    // SSE2 (every x86-64 has it), else 8 at a time in a 64-bit word.
    void skip_plain() {
#if defined(__SSE2__)
        const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
        for (;;) {
            ptrdiff_t left = end_ - p_;
            __m128i v;
            if (left >= 16) {
                v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p_));
            } else {
                if (left == 0) return;
                // The last bytes of the line, padded with zeros (below 0x20: they stop the scan at
                // the end): nothing past the line is read.
                alignas(16) char tail[16] = {};
                std::memcpy(tail, p_, static_cast<size_t>(left));
                v = _mm_load_si128(reinterpret_cast<const __m128i *>(tail));
            }
            // Signed: bytes of 0x80 and above are negative, so "below 0x20" takes them too.
            __m128i special =
                _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), _mm_cmplt_epi8(v, space));
            if (int mask = _mm_movemask_epi8(special); mask != 0) {
                p_ += __builtin_ctz(static_cast<unsigned>(mask));
                return;
            }
            p_ += 16;
        }
#else
        constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        auto has_zero = [](uint64_t v) { return ((v - ones) & ~v & highs) != 0; };
        while (end_ - p_ >= 8) {
            uint64_t w;
            std::memcpy(&w, p_, 8);
            bool below_space = ((w - ones * 0x20) & ~w & highs) != 0;
            if ((w & highs) != 0 || below_space || has_zero(w ^ (ones * '"')) || has_zero(w ^ (ones * '\\'))) break;
            p_ += 8;
        }
        while (p_ != end_) {
            auto c = static_cast<unsigned char>(*p_);
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return;
            ++p_;
        }
#endif
    }

    // Past one well-formed UTF-8 sequence of two to four bytes (Unicode table 3-7: no overlong
    // forms, no surrogates, nothing above U+10FFFF).
    bool utf8() {
        auto at = [this](ptrdiff_t i) { return static_cast<unsigned char>(p_[i]); };
        auto cont = [](unsigned char b, unsigned char lo = 0x80, unsigned char hi = 0xBF) { return b >= lo && b <= hi; };
        unsigned char c = at(0);
        ptrdiff_t left = end_ - p_;
        if (c >= 0xC2 && c <= 0xDF) {
            if (left < 2 || !cont(at(1))) return false;
            p_ += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
            if (left < 3 || !cont(at(1), lo, hi) || !cont(at(2))) return false;
            p_ += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
            if (left < 4 || !cont(at(1), lo, hi) || !cont(at(2)) || !cont(at(3))) return false;
            p_ += 4;
        } else {
            return false;
        }
        return true;
    }

    // At '"': the string's text (a view into the line, or into unescaped_ when it had escapes).
    bool string(std::string_view &out) {
        const char *start = ++p_;
        size_t begin = 0;
        bool escaped = false;
        for (;;) {
            const char *run = p_;
            skip_plain();
            if (escaped) unescaped_.append(run, static_cast<size_t>(p_ - run));
            if (p_ == end_) return false;
            auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                out = escaped ? std::string_view(unescaped_.data() + begin, unescaped_.size() - begin)
                              : std::string_view(start, static_cast<size_t>(p_ - start));
                ++p_;
                return true;
            }
            if (c == '\\') {
                if (!escaped) {
                    // Unescaped text is never longer than the line: one reservation per line keeps
                    // the views of earlier strings valid.
                    if (unescaped_.empty() && unescaped_.capacity() < line_size_) unescaped_.reserve(line_size_);
                    begin = unescaped_.size();
                    unescaped_.append(start, static_cast<size_t>(p_ - start));
                    escaped = true;
                }
                if (end_ - p_ < 2) return false;
                char e = p_[1];
                char plain = e == '"' || e == '\\' || e == '/' ? e
                             : e == 'b'                        ? '\b'
                             : e == 'f'                        ? '\f'
                             : e == 'n'                        ? '\n'
                             : e == 'r'                        ? '\r'
                             : e == 't'                        ? '\t'
                                                               : 0;
                if (plain == 0) return false; // \u (surrogate rules differ between parsers), or invalid
                unescaped_ += plain;
                p_ += 2;
                continue;
            }
            if (c < 0x20) return false;
            const char *sequence = p_;
            if (!utf8()) return false;
            if (escaped) unescaped_.append(sequence, static_cast<size_t>(p_ - sequence));
        }
    }

    std::array<Member, kMaxMembers> members_{};
    size_t count_ = 0;
    std::string unescaped_;
    size_t line_size_ = 0;
    bool spans_lines_ = false;
    const char *p_ = nullptr, *end_ = nullptr;
};

} // namespace vik::sdk

#endif
