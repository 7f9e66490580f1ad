#include "session/session_recorder.hpp"

#include "util/ids_and_time.hpp"
#include "util/untrusted_text.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>
#include <vik/plugin.h>

#include <stdexcept>

namespace vik::session {

namespace json = boost::json;
namespace fs = std::filesystem;

SessionRecorder::SessionRecorder(fs::path file, std::string session_id, std::string issue_id, std::string stage,
                                 RecorderLimits limits)
    : file_(std::move(file)), limits_(limits) {
    std::error_code ec = util::create_private_directories(file_.parent_path());
    if (!ec) ec = out_.open(file_);
    if (ec) throw std::runtime_error("cannot open session file " + file_.string() + ": " + ec.message());
    snapshot_ = json::object{{"session_id", session_id},
                             {"issue_id", util::to_valid_utf8(issue_id)},
                             {"stage", util::to_valid_utf8(stage)},
                             {"provider_session_id", nullptr},
                             {"state", "preparing"},
                             {"started_at", util::now_rfc3339()},
                             {"last_event_at", nullptr},
                             {"last_message", nullptr},
                             {"tokens", json::object{{"input", 0}, {"output", 0}, {"cache_read", 0}}},
                             {"cost_usd", 0.0},
                             {"rate_limits", nullptr},
                             {"error", nullptr},
                             {"write_error", nullptr},
                             {"truncated", false},
                             {"events_not_written", 0},
                             {"file", util::to_valid_utf8(file_.string())}};
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
    json::parse_options opts;
    opts.allow_invalid_utf8 = true; // repaired below: an agent's broken byte must not cost the event
    json::value v = json::parse(event_json, ec, {}, opts);
    if (ec || !v.is_object() || !v.as_object().contains("kind")) {
        append(json::object{{"kind", VIK_EVENT_UNKNOWN}, {"event_type", "invalid"}, {"raw", util::to_valid_utf8(event_json)}});
        return;
    }
    util::make_valid_utf8(v);
    json::object event = std::move(v.as_object());
    std::string_view kind = event.at("kind").is_string() ? std::string_view(event.at("kind").get_string()) : "";
    if (kind == VIK_EVENT_SESSION_STARTED && event.contains("session_id"))
        snapshot_["provider_session_id"] = event.at("session_id");
    else if (kind == VIK_EVENT_MESSAGE && event.contains("text"))
        snapshot_["last_message"] = event.at("text");
    else if (kind == VIK_EVENT_TOKEN_USAGE) {
        auto &t = snapshot_["tokens"].as_object();
        t["input"] = as_int(t, "input") + as_int(event, "input");
        t["output"] = as_int(t, "output") + as_int(event, "output");
        t["cache_read"] = as_int(t, "cache_read") + as_int(event, "cache_read");
        if (auto *c = event.if_contains("cost_usd"); c && (c->is_double() || c->is_int64()))
            snapshot_["cost_usd"] =
                snapshot_["cost_usd"].as_double() + (c->is_double() ? c->get_double() : static_cast<double>(c->get_int64()));
    } else if (kind == VIK_EVENT_RATE_LIMIT)
        snapshot_["rate_limits"] = event;
    append(std::move(event));
}

void SessionRecorder::append(json::object event) {
    std::string at = util::now_rfc3339();
    event["at"] = at;
    snapshot_["last_event_at"] = at;
    ++events_;
    if (stopped_) {
        snapshot_["events_not_written"] = static_cast<int64_t>(++not_written_);
        return;
    }
    std::string line = json::serialize(event);
    line += '\n';
    if (out_.size() + line.size() > limits_.max_file_bytes) {
        // One marker, then silence: the file says where it stops and why.
        stopped_ = true;
        snapshot_["truncated"] = true;
        snapshot_["events_not_written"] = static_cast<int64_t>(++not_written_);
        json::object marker{{"kind", VIK_EVENT_TRUNCATED},
                            {"detail", "session file reached its limit of " + std::to_string(limits_.max_file_bytes) +
                                           " bytes; later events are not written (token counts are still kept)"},
                            {"limit_bytes", limits_.max_file_bytes},
                            {"at", at}};
        line = json::serialize(marker) + "\n";
        spdlog::warn("session file truncated session_id={} file={} limit_bytes={}",
                     std::string(snapshot_["session_id"].as_string()), file_.string(), limits_.max_file_bytes);
    }
    if (std::error_code ec = out_.append(line)) {
        stopped_ = true;
        if (!snapshot_["truncated"].as_bool()) snapshot_["events_not_written"] = static_cast<int64_t>(++not_written_);
        std::string reason = "cannot write " + file_.string() + ": " + ec.message();
        snapshot_["write_error"] = reason;
        // Once per session: a full disk would otherwise log every event.
        spdlog::error(
            "session file write failed session_id={} issue_id={}: {}; later events are not recorded (token counts still are)",
            std::string(snapshot_["session_id"].as_string()), std::string(snapshot_["issue_id"].as_string()), reason);
    }
}

void SessionRecorder::finish(const std::string &state, const std::string &detail) {
    snapshot_["state"] = state;
    snapshot_["finished_at"] = util::now_rfc3339();
    if (!detail.empty()) snapshot_["error"] = util::to_valid_utf8(detail);
}

} // namespace vik::session
