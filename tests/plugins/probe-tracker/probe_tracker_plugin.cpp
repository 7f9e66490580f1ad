// probe-tracker: a tracker for scheduling tests. Issues live in one JSON file (an array). Every
// pull and fetch reads the file at its START, appends "pull-start N ID=STATE..." (or
// "fetch-start N ...") to the log, waits its configured delay, appends "pull-end N", and answers with what it read at the
// start: a slow tracker whose answer is already stale when it arrives. set_state rewrites the file
// at once (and logs "set-state ID STATE"), so scripts can tell exactly which pulls started before
// or after a write.
#include <vik/plugin.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

struct Tracker {
    fs::path path, log;
    int64_t pull_delay_ms = 0, fetch_delay_ms = 0;
    std::mutex mutex; // file reads, writes and log lines
    int64_t pulls = 0, fetches = 0;
};

fs::path resolve(const json::object &s, const char *key) {
    auto *v = s.if_contains(key);
    if (v == nullptr || !v->is_string() || v->as_string().empty())
        throw vik::sdk::Error(std::string("probe-tracker: setting '") + key + "' is required", VIK_INVALID_ARGUMENT);
    fs::path p(std::string(v->as_string()));
    if (p.is_relative())
        if (auto *dir = s.if_contains("workflow_dir"); dir && dir->is_string()) p = fs::path(std::string(dir->as_string())) / p;
    return p;
}

int64_t number(const json::object &s, const char *key) {
    auto *v = s.if_contains(key);
    if (v == nullptr) return 0;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
    if (v->is_double()) return static_cast<int64_t>(v->as_double());
    throw vik::sdk::Error(std::string("probe-tracker: setting '") + key + "' must be a number", VIK_INVALID_ARGUMENT);
}

std::string read_text(const fs::path &p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw vik::sdk::Error("probe-tracker: cannot read " + p.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void log_line(const Tracker &t, const std::string &line) {
    std::ofstream o(t.log, std::ios::binary | std::ios::app);
    o << line << "\n";
}

std::string issue_id(const json::value &issue) {
    if (!issue.is_object()) return {};
    auto *v = issue.as_object().if_contains("id");
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// Reads the file and logs the start of operation `what` with the states it read
// ("pull-start 3 A-1=todo B-2=done"); returns the text and the number.
std::pair<std::string, int64_t> begin(Tracker &t, const char *what, int64_t &counter) {
    std::lock_guard lock(t.mutex);
    std::string text = read_text(t.path);
    int64_t n = ++counter;
    std::string line = std::string(what) + "-start " + std::to_string(n);
    json::value all = json::parse(text);
    for (auto &i : all.as_array())
        if (auto *st = i.as_object().if_contains("state"); st && st->is_string())
            line += " " + issue_id(i) + "=" + std::string(st->as_string());
    log_line(t, line);
    return {text, n};
}

void end(Tracker &t, const char *what, int64_t n, int64_t delay_ms) {
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    std::lock_guard lock(t.mutex);
    log_line(t, std::string(what) + "-end " + std::to_string(n));
}

vik_status create(const vik_host_api *, const char *settings_json, void **out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        json::value s = json::parse(settings_json);
        auto t = std::make_unique<Tracker>();
        t->path = resolve(s.as_object(), "path");
        t->log = resolve(s.as_object(), "log");
        t->pull_delay_ms = number(s.as_object(), "pull_delay_ms");
        t->fetch_delay_ms = number(s.as_object(), "fetch_delay_ms");
        *out = t.release();
        return VIK_OK;
    });
}

void destroy(void *instance) { delete static_cast<Tracker *>(instance); }

vik_status pull(void *instance, uint32_t, const vik_sink *out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        auto &t = *static_cast<Tracker *>(instance);
        auto [text, n] = begin(t, "pull", t.pulls);
        end(t, "pull", n, t.pull_delay_ms);
        vik::sdk::write(out, text);
        return VIK_OK;
    });
}

vik_status fetch(void *instance, const char *ids_json, uint32_t, const vik_sink *out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        auto &t = *static_cast<Tracker *>(instance);
        std::set<std::string> ids;
        json::value requested = json::parse(ids_json);
        for (auto &v : requested.as_array())
            if (v.is_string()) ids.insert(std::string(v.as_string()));
        auto [text, n] = begin(t, "fetch", t.fetches);
        json::value all = json::parse(text);
        json::array found;
        for (auto &i : all.as_array())
            if (ids.count(issue_id(i))) found.push_back(i);
        end(t, "fetch", n, t.fetch_delay_ms);
        vik::sdk::write(out, json::serialize(found));
        return VIK_OK;
    });
}

vik_status set_state(void *instance, const char *id, const char *state, uint32_t, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        auto &t = *static_cast<Tracker *>(instance);
        std::lock_guard lock(t.mutex);
        json::value doc = json::parse(read_text(t.path));
        bool found = false;
        for (auto &i : doc.as_array())
            if (issue_id(i) == id) {
                i.as_object()["state"] = state;
                found = true;
            }
        if (!found) throw vik::sdk::Error(std::string("probe-tracker: no issue '") + id + "'", VIK_NOT_FOUND);
        fs::path tmp = t.path;
        tmp += ".tmp";
        {
            std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
            o << json::serialize(doc) << "\n";
        }
        fs::rename(tmp, t.path);
        log_line(t, std::string("set-state ") + id + " " + state);
        return VIK_OK;
    });
}

vik_status comment(void *, const char *, const char *, uint32_t, vik_errbuf *err) {
    return vik::sdk::unsupported(err, "probe-tracker", "comment");
}

const vik_tracker_v1 tracker = {sizeof(vik_tracker_v1), create, destroy, pull, fetch, set_state, comment};

const void *get_interface(const char *id) { return std::strcmp(id, VIK_TRACKER_V1) == 0 ? &tracker : nullptr; }

} // namespace

VIK_PLUGIN("probe-tracker", "0.1.0", "A test tracker over a JSON file that logs each pull and can answer late", get_interface);
