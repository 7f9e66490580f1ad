#include "plugins/json_service.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

// The opaque document of the ABI: a parsed value.
struct vik_json {
    boost::json::value root;
};

namespace vik::plugins {
namespace {

namespace json = boost::json;

void write_error(vik_errbuf *err, const std::string &msg) {
    if (!err || !err->data || err->capacity == 0) return;
    size_t n = std::min(msg.size(), err->capacity - 1);
    std::memcpy(err->data, msg.data(), n);
    err->data[n] = '\0';
}

void write(const vik_sink *out, std::string_view text) {
    if (out && out->write) out->write(out->ctx, text.data(), text.size());
}

// 1-based line and column of byte `offset` in `text`.
std::string position(std::string_view text, size_t offset) {
    offset = std::min(offset, text.size());
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// The value at an RFC 6901 pointer: VIK_OK and *found, VIK_NOT_FOUND, or VIK_INVALID_ARGUMENT for
// a malformed pointer (one that is neither "" nor starts with '/', or a bad ~ escape).
vik_status resolve(const vik_json *doc, const char *pointer, const json::value **found) {
    if (doc == nullptr || pointer == nullptr) return VIK_INVALID_ARGUMENT;
    std::string_view rest(pointer);
    const json::value *v = &doc->root;
    if (!rest.empty() && rest.front() != '/') return VIK_INVALID_ARGUMENT;
    // The whole pointer is checked first: a malformed one is malformed whatever the document holds.
    for (size_t i = 0; i < rest.size(); ++i)
        if (rest[i] == '~' && (i + 1 >= rest.size() || (rest[i + 1] != '0' && rest[i + 1] != '1'))) return VIK_INVALID_ARGUMENT;
    while (!rest.empty()) {
        rest.remove_prefix(1); // the '/'
        size_t end = rest.find('/');
        std::string_view raw = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
        std::string token;
        for (size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] != '~') {
                token += raw[i];
                continue;
            }
            if (i + 1 >= raw.size() || (raw[i + 1] != '0' && raw[i + 1] != '1')) return VIK_INVALID_ARGUMENT;
            token += raw[++i] == '0' ? '~' : '/';
        }
        if (const auto *o = v->if_object()) {
            v = o->if_contains(token);
        } else if (const auto *a = v->if_array()) {
            size_t index = 0;
            auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
            bool canonical = !token.empty() && (token == "0" || token.front() != '0');
            if (ec != std::errc{} || p != token.data() + token.size() || !canonical) return VIK_NOT_FOUND;
            v = index < a->size() ? &(*a)[index] : nullptr;
        } else {
            v = nullptr;
        }
        if (v == nullptr) return VIK_NOT_FOUND;
    }
    *found = v;
    return VIK_OK;
}

vik_status parse(const char *text, size_t len, vik_json **out, vik_errbuf *err) {
    if (out == nullptr || (text == nullptr && len > 0)) return VIK_INVALID_ARGUMENT;
    std::string_view input(text ? text : "", len);
    json::stream_parser parser;
    boost::system::error_code ec;
    size_t used = parser.write_some(input.data(), input.size(), ec);
    if (!ec) parser.finish(ec);
    if (!ec && used < input.size()) ec = json::error::extra_data;
    if (ec) {
        write_error(err, "not valid JSON at " + position(input, used) + ": " + ec.message());
        return VIK_INVALID_ARGUMENT;
    }
    auto *doc = new (std::nothrow) vik_json{parser.release()};
    if (doc == nullptr) {
        write_error(err, "out of memory");
        return VIK_ERROR;
    }
    *out = doc;
    return VIK_OK;
}

void free_doc(vik_json *doc) { delete doc; }

vik_status type(const vik_json *doc, const char *pointer, int32_t *out) {
    const json::value *v = nullptr;
    if (auto s = resolve(doc, pointer, &v); s != VIK_OK) return s;
    if (out == nullptr) return VIK_INVALID_ARGUMENT;
    switch (v->kind()) {
    case json::kind::null:
        *out = VIK_JSON_NULL;
        break;
    case json::kind::bool_:
        *out = VIK_JSON_BOOL;
        break;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
        *out = VIK_JSON_NUMBER;
        break;
    case json::kind::string:
        *out = VIK_JSON_STRING;
        break;
    case json::kind::array:
        *out = VIK_JSON_ARRAY;
        break;
    case json::kind::object:
        *out = VIK_JSON_OBJECT;
        break;
    }
    return VIK_OK;
}

vik_status get_string(const vik_json *doc, const char *pointer, const vik_sink *out) {
    const json::value *v = nullptr;
    if (auto s = resolve(doc, pointer, &v); s != VIK_OK) return s;
    if (!v->is_string()) return VIK_INVALID_ARGUMENT;
    write(out, v->get_string());
    return VIK_OK;
}

vik_status get_int(const vik_json *doc, const char *pointer, int64_t *out) {
    const json::value *v = nullptr;
    if (auto s = resolve(doc, pointer, &v); s != VIK_OK) return s;
    if (out == nullptr) return VIK_INVALID_ARGUMENT;
    if (v->is_int64()) {
        *out = v->get_int64();
    } else if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
        *out = static_cast<int64_t>(v->get_uint64());
    } else {
        return VIK_INVALID_ARGUMENT; // a fraction, out of range, or not a number
    }
    return VIK_OK;
}

vik_status get_bool(const vik_json *doc, const char *pointer, bool *out) {
    const json::value *v = nullptr;
    if (auto s = resolve(doc, pointer, &v); s != VIK_OK) return s;
    if (out == nullptr || !v->is_bool()) return VIK_INVALID_ARGUMENT;
    *out = v->get_bool();
    return VIK_OK;
}

vik_status get_size(const vik_json *doc, const char *pointer, size_t *out) {
    const json::value *v = nullptr;
    if (auto s = resolve(doc, pointer, &v); s != VIK_OK) return s;
    if (out == nullptr) return VIK_INVALID_ARGUMENT;
    if (const auto *a = v->if_array()) {
        *out = a->size();
    } else if (const auto *o = v->if_object()) {
        *out = o->size();
    } else {
        return VIK_INVALID_ARGUMENT;
    }
    return VIK_OK;
}

vik_status get_key(const vik_json *doc, const char *pointer, size_t index, const vik_sink *out) {
    const json::value *v = nullptr;
    if (auto s = resolve(doc, pointer, &v); s != VIK_OK) return s;
    const auto *o = v->if_object();
    if (o == nullptr) return VIK_INVALID_ARGUMENT;
    if (index >= o->size()) return VIK_NOT_FOUND;
    write(out, (o->begin() + static_cast<std::ptrdiff_t>(index))->key());
    return VIK_OK;
}

vik_status serialize(const vik_json *doc, const char *pointer, const vik_sink *out) {
    const json::value *v = nullptr;
    if (auto s = resolve(doc, pointer, &v); s != VIK_OK) return s;
    write(out, json::serialize(*v));
    return VIK_OK;
}

void write_string(const char *text, size_t len, const vik_sink *out) {
    write(out, json::serialize(json::string_view(text ? text : "", text ? len : 0)));
}

const vik_json_v1 kJson{sizeof(vik_json_v1), parse,       free_doc, type, get_string, get_int, get_bool, get_size, get_key,
                        serialize,           write_string};

} // namespace

const vik_json_v1 *json_service() { return &kJson; }

} // namespace vik::plugins
