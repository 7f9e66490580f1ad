#include "cli/live_status.hpp"

#include "cli/workflow_loading.hpp"
#include "daemon/daemon_status.hpp"
#include "daemon/scoped_root.hpp"
#include "daemon/state_file.hpp"
#include "http/client.hpp"
#include "http/metrics.hpp"
#include "util/untrusted_text.hpp"
#include "workflow/config.hpp"

#include <boost/json.hpp>

#include <cstdlib>
#include <iostream>
#include <vector>

namespace vik::cli {

namespace json = boost::json;

namespace {

std::string str(const json::object &o, const char *key) {
    auto *v = o.if_contains(key);
    if (!v) return "";
    if (v->is_string()) return util::escape_for_terminal(std::string(v->get_string()));
    if (v->is_int64()) return std::to_string(v->get_int64());
    if (v->is_uint64()) return std::to_string(v->get_uint64());
    if (v->is_double()) return std::to_string(v->get_double());
    return "";
}

int64_t num(const json::object &o, const char *key) {
    auto *v = o.if_contains(key);
    if (!v) return 0;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
    if (v->is_double()) return static_cast<int64_t>(v->get_double());
    return 0;
}

std::string ago(const std::string &rfc3339, std::chrono::system_clock::time_point now) {
    double at = http::rfc3339_seconds(rfc3339);
    if (at < 0) return "-";
    double now_s = std::chrono::duration<double>(now.time_since_epoch()).count();
    auto d = static_cast<int64_t>(now_s - at);
    bool future = d < 0;
    int64_t a = future ? -d : d;
    std::string t = a < 60     ? std::to_string(a) + "s"
                    : a < 3600 ? std::to_string(a / 60) + "m" + std::to_string(a % 60) + "s"
                               : std::to_string(a / 3600) + "h" + std::to_string(a % 3600 / 60) + "m";
    return future ? "in " + t : t + " ago";
}

std::string clip(std::string s, size_t n) {
    if (s.size() > n) s = s.substr(0, n - 3) + "...";
    return s;
}

// Columns padded to their widest cell.
std::string table(const std::vector<std::vector<std::string>> &rows) {
    std::vector<size_t> width;
    for (const auto &r : rows)
        for (size_t i = 0; i < r.size(); ++i) {
            if (width.size() <= i) width.push_back(0);
            width[i] = std::max(width[i], r[i].size());
        }
    std::string out;
    for (const auto &r : rows) {
        std::string line = "  ";
        for (size_t i = 0; i < r.size(); ++i)
            line += r[i] + (i + 1 < r.size() ? std::string(width[i] - r[i].size() + 2, ' ') : "");
        out += line + "\n";
    }
    return out;
}

const json::array &arr(const json::object &o, const char *key) {
    static const json::array empty;
    auto *v = o.if_contains(key);
    return v && v->is_array() ? v->get_array() : empty;
}

std::string token_for(const workflow::Config &cfg) {
    if (cfg.server.token_env.empty()) return "";
    const char *t = std::getenv(cfg.server.token_env.c_str());
    return t ? t : "";
}

} // namespace

std::string render_live_table(const json::object &state, std::chrono::system_clock::time_point now) {
    std::string out;
    const auto &running = arr(state, "running"), &retrying = arr(state, "retrying"), &blocked = arr(state, "blocked");
    out += "running: " + std::to_string(running.size()) + " of " + str(state, "max_issue_concurrency") + "\n";
    if (!running.empty()) {
        std::vector<std::vector<std::string>> rows{
            {"ISSUE", "STAGE", "AGENT", "ATTEMPT", "STARTED", "LAST EVENT", "TOKENS", "LAST MESSAGE"}};
        for (const auto &v : running) {
            if (!v.is_object()) continue;
            const auto &r = v.get_object();
            json::object session =
                r.if_contains("session") && r.at("session").is_object() ? r.at("session").get_object() : json::object{};
            json::object tokens = session.if_contains("tokens") && session.at("tokens").is_object()
                                      ? session.at("tokens").get_object()
                                      : json::object{};
            rows.push_back({clip(str(r, "issue_id"), 24), str(r, "stage"), str(r, "agent"),
                            str(r, "attempt") + (str(r, "retry_kind") == "first" ? "" : " " + str(r, "retry_kind")),
                            ago(str(r, "started_at"), now), ago(str(session, "last_event_at"), now),
                            std::to_string(num(tokens, "input") + num(tokens, "output")),
                            clip(str(session, "last_message"), 60)});
        }
        out += table(rows);
    }
    out += "retrying: " + std::to_string(retrying.size()) + "\n";
    if (!retrying.empty()) {
        std::vector<std::vector<std::string>> rows{{"ISSUE", "STAGE", "ATTEMPT", "KIND", "DUE", "LAST ERROR"}};
        for (const auto &v : retrying)
            if (v.is_object()) {
                const auto &r = v.get_object();
                rows.push_back({clip(str(r, "issue_id"), 24), str(r, "stage"), str(r, "attempt"), str(r, "kind"),
                                ago(str(r, "due_at"), now), clip(str(r, "last_error"), 60)});
            }
        out += table(rows);
    }
    out += "blocked: " + std::to_string(blocked.size()) + "\n";
    if (!blocked.empty()) {
        std::vector<std::vector<std::string>> rows{{"ISSUE", "STAGE", "SINCE", "REASON"}};
        for (const auto &v : blocked)
            if (v.is_object()) {
                const auto &r = v.get_object();
                rows.push_back(
                    {clip(str(r, "issue_id"), 24), str(r, "stage"), ago(str(r, "since"), now), clip(str(r, "reason"), 70)});
            }
        out += table(rows);
    }
    if (auto *t = state.if_contains("totals"); t && t->is_object()) {
        const auto &o = t->get_object();
        out += "totals: " + str(o, "sessions_completed") + " completed, " + str(o, "sessions_failed") + " failed, " +
               str(o, "sessions_cancelled") + " cancelled; tokens " + std::to_string(num(o, "tokens_input")) + " in, " +
               std::to_string(num(o, "tokens_output")) + " out; " + str(o, "intake_cycles") + " pulls (" +
               str(o, "intake_failures") + " failed)\n";
    }
    if (auto e = str(state, "last_intake_error"); !e.empty()) out += "last pull failed: " + e + "\n";
    return out;
}

void print_live_status(const workflow::Config &cfg, const daemon::ServiceState &state) {
    if (state.port <= 0) {
        std::cout << "live: not served (start the host with --port N or server.port to see its work here)\n";
        return;
    }
    auto reply = http::call(state.bind_address, static_cast<uint16_t>(state.port), "GET", "/api/v1/state", token_for(cfg));
    if (!reply) {
        std::cout << "live: " << reply.error() << "\n";
        return;
    }
    if (reply->status != 200) {
        std::cout << "live: the host answered " << reply->status
                  << (reply->status == 401 ? " (export the token named by server.token_env)" : "") << "\n";
        return;
    }
    boost::system::error_code ec;
    auto v = json::parse(reply->body, ec);
    if (ec || !v.is_object()) {
        std::cout << "live: the host's answer is not JSON\n";
        return;
    }
    const std::string host =
        state.bind_address.find(':') != std::string::npos ? "[" + state.bind_address + "]" : state.bind_address;
    std::cout << "dashboard: http://" << (state.bind_address == "0.0.0.0" ? "127.0.0.1" : host) << ":" << state.port << "/\n"
              << render_live_table(v.get_object(), std::chrono::system_clock::now());
}

// `vik-host refresh [WORKFLOW]`: POST /api/v1/refresh to the workflow's running host.
int cmd_refresh(const Options &opts) {
    auto loaded = load_workflow_file(opts.workflow);
    if (!loaded) {
        std::cerr << "refresh failed: " << loaded.error().message << "\n";
        return 1;
    }
    const auto &cfg = loaded->config;
    auto s = daemon::inspect(cfg.service_dir());
    if (!s.access_error.empty()) {
        std::cerr << "refresh failed: " << s.access_error << "\n";
        return 1;
    }
    if (s.liveness != daemon::Liveness::running || !s.state) {
        std::cerr << "refresh failed: no vik-host runs this workflow (" << cfg.workflow_path.string() << ")\n";
        return 1;
    }
    if (s.state->port <= 0) {
        std::cerr << "refresh failed: the running vik-host (pid " << s.state->pid
                  << ") serves no HTTP API; start it with --port N or server.port\n";
        return 1;
    }
    auto reply =
        http::call(s.state->bind_address, static_cast<uint16_t>(s.state->port), "POST", "/api/v1/refresh", token_for(cfg));
    if (!reply) {
        std::cerr << "refresh failed: " << reply.error() << "\n";
        return 1;
    }
    if (reply->status != 202) {
        boost::system::error_code ec;
        auto v = json::parse(reply->body, ec);
        std::string message = !ec && v.is_object() && v.get_object().contains("error")
                                  ? std::string(v.at("error").at("message").as_string())
                                  : "HTTP " + std::to_string(reply->status);
        std::cerr << "refresh failed: " << util::escape_for_terminal(message) << "\n";
        return 1;
    }
    std::cout << "intake requested\n";
    return 0;
}

} // namespace vik::cli
