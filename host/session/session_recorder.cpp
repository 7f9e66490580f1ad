#include "session/session_recorder.hpp"

#include "util/ids_and_time.hpp"

#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace vik::session {

namespace json = boost::json;
namespace fs = std::filesystem;

SessionRecorder::SessionRecorder(fs::path file, std::string session_id, std::string issue_id, std::string stage)
    : file_(std::move(file)) {
    std::error_code ec;
    fs::create_directories(file_.parent_path(), ec);
    out_ = std::fopen(file_.c_str(), "ae");
    if (out_ == nullptr) throw std::runtime_error("cannot open session file " + file_.string() + ": " + std::strerror(errno));
    snapshot_ = json::object{{"session_id", session_id},
                             {"issue_id", issue_id},
                             {"stage", stage},
                             {"provider_session_id", nullptr},
                             {"state", "preparing"},
                             {"started_at", util::now_rfc3339()},
                             {"last_event_at", nullptr},
                             {"last_message", nullptr},
                             {"tokens", json::object{{"input", 0}, {"output", 0}, {"cache_read", 0}}},
                             {"cost_usd", 0.0},
                             {"rate_limits", nullptr},
                             {"error", nullptr},
                             {"file", file_.string()}};
}

SessionRecorder::~SessionRecorder() {
    if (out_) std::fclose(out_);
}

void SessionRecorder::set_running() { snapshot_["state"] = "running"; }

namespace {
int64_t as_int(const json::object &o, const char *k) {
    auto *v = o.if_contains(k);
    if (!v) return 0;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
    if (v->is_double()) return static_cast<int64_t>(v->get_double());
    return 0;
}
} // namespace

void SessionRecorder::record(const std::string &event_json) {
    boost::system::error_code ec;
    json::value v = json::parse(event_json, ec);
    if (ec || !v.is_object() || !v.as_object().contains("kind")) {
        append(json::object{{"kind", "unknown"}, {"event_type", "invalid"}, {"raw", event_json}});
        return;
    }
    json::object event = std::move(v.as_object());
    std::string_view kind = event.at("kind").is_string() ? std::string_view(event.at("kind").get_string()) : "";
    if (kind == "session_started" && event.contains("session_id")) snapshot_["provider_session_id"] = event.at("session_id");
    else if (kind == "message" && event.contains("text")) snapshot_["last_message"] = event.at("text");
    else if (kind == "token_usage") {
        auto &t = snapshot_["tokens"].as_object();
        t["input"] = as_int(t, "input") + as_int(event, "input");
        t["output"] = as_int(t, "output") + as_int(event, "output");
        t["cache_read"] = as_int(t, "cache_read") + as_int(event, "cache_read");
        if (auto *c = event.if_contains("cost_usd"); c && (c->is_double() || c->is_int64()))
            snapshot_["cost_usd"] = snapshot_["cost_usd"].as_double() + (c->is_double() ? c->get_double() : static_cast<double>(c->get_int64()));
    } else if (kind == "rate_limit") snapshot_["rate_limits"] = event;
    append(std::move(event));
}

void SessionRecorder::append(json::object event) {
    std::string at = util::now_rfc3339();
    event["at"] = at;
    snapshot_["last_event_at"] = at;
    ++events_;
    std::string line = json::serialize(event);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
}

void SessionRecorder::finish(const std::string &state, const std::string &detail) {
    snapshot_["state"] = state;
    snapshot_["finished_at"] = util::now_rfc3339();
    if (!detail.empty()) snapshot_["error"] = detail;
}

} // namespace vik::session
