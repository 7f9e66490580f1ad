// command-tracker: vik's `issues.pull.command`. Runs the (host-rendered) command with `sh -c` in
// the workflow directory and hands its stdout to the host, which validates it as the issue JSON
// of vik-compat §3. Fetch-by-id is a pull filtered to the ids (a pull command has no other way).
#include <vik/plugin.hpp>

#include <boost/json.hpp>

#include <cstring>
#include <memory>
#include <set>

namespace {

namespace json = boost::json;

constexpr size_t kMaxOutput = 64u * 1024 * 1024;

struct Tracker {
    const vik_host_api *host;
    std::string command;
    std::string cwd;
};

vik_status create(const vik_host_api *host, const char *settings_json, void **out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        json::value s = json::parse(settings_json);
        auto *cmd = s.as_object().if_contains("command");
        if (cmd == nullptr || !cmd->is_string() || cmd->as_string().empty())
            throw vik::sdk::Error("command-tracker: setting 'command' (the pull command) is required", VIK_INVALID_ARGUMENT);
        auto t = std::make_unique<Tracker>();
        t->host = host;
        t->command = std::string(cmd->as_string());
        if (auto *cwd = s.as_object().if_contains("cwd"); cwd && cwd->is_string()) t->cwd = std::string(cwd->as_string());
        *out = t.release();
        return VIK_OK;
    });
}

void destroy(void *instance) { delete static_cast<Tracker *>(instance); }

std::string run_pull(Tracker &t, uint32_t timeout_ms) {
    vik::sdk::RunOptions run;
    run.argv = {"sh", "-c", t.command};
    run.cwd = t.cwd;
    run.timeout_ms = timeout_ms;
    run.keep_bytes = kMaxOutput;
    run.max_line_bytes = kMaxOutput;
    auto r = vik::sdk::run_process(t.host, run);
    if (r.timed_out)
        throw vik::sdk::Error("issue pull command timed out after " + std::to_string(timeout_ms) + " ms", VIK_TIMEOUT);
    if (r.term_signal != 0) throw vik::sdk::Error("issue pull command was killed by signal " + std::to_string(r.term_signal));
    if (r.exit_code != 0)
        throw vik::sdk::Error("issue pull command exited with code " + std::to_string(r.exit_code) + ": " +
                              vik::sdk::tail(r.err, 4096));
    if (r.out.size() >= kMaxOutput) throw vik::sdk::Error("issue pull command printed more than 64 MiB");
    return r.out;
}

vik_status pull(void *instance, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        vik::sdk::write(out, run_pull(*static_cast<Tracker *>(instance), timeout_ms));
        return VIK_OK;
    });
}

vik_status fetch(void *instance, const char *ids_json, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        std::set<std::string> ids;
        json::value requested = json::parse(ids_json); // named: a range-for over a temporary's member dangles
        if (!requested.is_array()) throw vik::sdk::Error("fetch: ids must be a JSON array of strings", VIK_INVALID_ARGUMENT);
        for (auto &v : requested.as_array())
            if (v.is_string()) ids.insert(std::string(v.as_string()));
        json::value all;
        try {
            all = json::parse(run_pull(*static_cast<Tracker *>(instance), timeout_ms));
        } catch (const std::system_error &e) {
            throw vik::sdk::Error(std::string("issue pull command printed invalid JSON: ") + e.what());
        }
        json::array found;
        if (all.is_array())
            for (auto &issue : all.as_array()) {
                if (!issue.is_object()) continue;
                const json::value *id = issue.as_object().if_contains("id");
                if (id == nullptr) id = issue.as_object().if_contains("identifier");
                if (id && id->is_string() && ids.count(std::string(id->as_string()))) found.push_back(issue);
            }
        vik::sdk::write(out, json::serialize(found));
        return VIK_OK;
    });
}

vik_status set_state(void *, const char *, const char *, uint32_t, vik_errbuf *err) {
    return vik::sdk::unsupported(err, "command-tracker",
                                 "set_state (a pull command cannot change issues; use a tracker plugin that can)");
}

vik_status comment(void *, const char *, const char *, uint32_t, vik_errbuf *err) {
    return vik::sdk::unsupported(err, "command-tracker",
                                 "comment (a pull command cannot change issues; use a tracker plugin that can)");
}

const vik_tracker_v1 tracker = {sizeof(vik_tracker_v1), create, destroy, pull, fetch, set_state, comment};

const void *get_interface(const char *id) { return std::strcmp(id, VIK_TRACKER_V1) == 0 ? &tracker : nullptr; }

} // namespace

VIK_PLUGIN("command-tracker", "0.1.0", "vik's issues.pull.command: a shell command that prints the issues as a JSON array",
           get_interface);
