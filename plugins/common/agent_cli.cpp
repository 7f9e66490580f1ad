#include "agent_cli.hpp"

#include <vik/plugin.hpp>

#include <boost/json.hpp>

#include <algorithm>

namespace vik::agents {

namespace json = boost::json;

std::string event(json::object o) { return json::serialize(o); }

std::string_view text_of(const json::value *v) {
    if (v == nullptr || !v->is_string()) return {};
    return std::string_view(v->get_string().data(), v->get_string().size());
}

EventWriter &EventWriter::value(std::string_view k, const json::value &v) {
    std::string &out = writer_.member(k);
    json::serializer sr;
    sr.reset(&v);
    char chunk[4096];
    while (!sr.done())
        out.append(sr.read(chunk));
    return *this;
}

std::string str(const json::value *v) {
    if (v == nullptr || v->is_null()) return "";
    if (v->is_string()) return std::string(v->get_string());
    return json::serialize(*v);
}

int64_t int_field(const json::object &o, const char *k) {
    auto *v = o.if_contains(k);
    return v && v->is_int64() ? v->get_int64() : v && v->is_uint64() ? static_cast<int64_t>(v->get_uint64()) : 0;
}

namespace {
// One line's document at a time, in an arena reused from line to line (a flooding agent prints
// hundreds of thousands of lines: an allocation per value showed). One per thread: the lines of
// every session a thread reads are parsed one after another.
struct LineParser {
    alignas(16) unsigned char arena_buffer[8192];
    // Made anew for each line: release() keeps the resource's growth, so the block it takes
    // next doubles with every large line for the life of the thread (gigabytes after a few dozen).
    std::optional<json::monotonic_resource> arena;
    json::parser parser;
    std::optional<json::value> doc; // declared after the arena: destroyed before it
};
} // namespace

const json::value *MapperState::parse_line(std::string_view line, bool truncated, const char *cli, EventList &out) {
    if (!truncated && line.find_first_not_of(" \t\r") == std::string_view::npos) return nullptr; // blank lines carry nothing
    static thread_local LineParser lp;
    boost::system::error_code ec;
    if (!truncated) {
        lp.doc.reset();    // the previous line's document goes before its arena
        lp.parser.reset(); // so does what a failed parse left on the parser's stack
        lp.arena.emplace(lp.arena_buffer, sizeof lp.arena_buffer);
        lp.parser.reset(json::storage_ptr(&*lp.arena));
        lp.parser.write(line.data(), line.size(), ec);
        // Constructed from the parser's value: it keeps the arena (an assignment would copy the
        // whole document onto the heap).
        if (!ec) lp.doc.emplace(lp.parser.release());
    }
    if (!truncated && !ec && lp.doc->is_object()) return &*lp.doc;
    // At most 200 bytes of the line, never cut inside a UTF-8 character.
    size_t keep = std::min<size_t>(line.size(), 200);
    while (keep > 0 && keep < line.size() && (static_cast<unsigned char>(line[keep]) & 0xC0) == 0x80)
        --keep;
    std::string detail = std::string(cli) + (truncated ? " printed an over-long line: " : " printed a line that is not JSON: ") +
                         std::string(line.substr(0, keep));
    EventWriter(out, VIK_EVENT_ERROR).text("detail", detail).end();
    settle(VIK_SESSION_FAILED, detail);
    return nullptr;
}

Profile parse_profile(const char *profile_json) {
    json::value v = json::parse(profile_json);
    const auto &o = v.as_object();
    Profile p;
    p.name = str(o.if_contains("name"));
    p.runtime = str(o.if_contains("runtime"));
    p.model = str(o.if_contains("model"));
    p.command = str(o.if_contains("command"));
    if (auto *a = o.if_contains("args"); a && a->is_object()) p.args = a->get_object();
    if (auto *s = o.if_contains("settings"); s && s->is_object()) p.settings = s->get_object();
    return p;
}

std::vector<std::string> args_to_flags(const json::object &args) {
    std::vector<std::string> out;
    for (const auto &kv : args) {
        std::string flag(kv.key());
        if (flag.rfind("-", 0) != 0) flag = "--" + flag;
        const json::value &v = kv.value();
        if (v.is_null() || (v.is_bool() && !v.get_bool())) continue;
        if (v.is_bool()) {
            out.push_back(flag);
        } else if (v.is_array()) {
            std::string joined;
            for (const auto &item : v.get_array())
                joined += (joined.empty() ? "" : ",") + str(&item);
            out.push_back(flag);
            out.push_back(joined);
        } else {
            out.push_back(flag);
            out.push_back(str(&v));
        }
    }
    return out;
}

int32_t cli_outcome(const std::string &cli, int32_t settled, const std::string &settled_detail, int32_t code, int32_t sig,
                    bool cancelled, const std::string &last_notice, const std::string &stderr_tail, std::string &detail) {
    if (settled == VIK_SESSION_COMPLETED && code == 0) return VIK_SESSION_COMPLETED;
    if (cancelled) {
        detail = "cancelled";
        return VIK_SESSION_CANCELLED;
    }
    if (settled == VIK_SESSION_FAILED) {
        detail = settled_detail;
        return VIK_SESSION_FAILED;
    }
    std::string why = !last_notice.empty() ? last_notice : stderr_tail;
    while (!why.empty() && why.back() == '\n')
        why.pop_back();
    if (code == 143 || sig == 15)
        detail = cli + " was killed (SIGTERM) before it finished";
    else if (sig != 0)
        detail = cli + " was killed by signal " + std::to_string(sig) + " before it finished";
    else if (settled == VIK_SESSION_COMPLETED)
        detail = cli + " reported completion but exited with code " + std::to_string(code);
    else if (code != 0)
        detail = cli + " exited with code " + std::to_string(code) + " before a terminal event";
    else
        detail = cli + " exited without a terminal event";
    if (!why.empty()) detail += ": " + why;
    return VIK_SESSION_FAILED;
}

} // namespace vik::agents
