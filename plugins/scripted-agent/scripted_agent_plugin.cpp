// scripted-agent: an agent runtime for demos and tests.
//
// Either `settings.command` (run with `sh -c` in the workspace, prompt on stdin) or
// `settings.script` (a JSONL file replayed through `cat`) produces stdout lines. Each line that is
// a JSON object with a "kind" is an event of vik-host's vocabulary and is passed on as is; other
// JSON becomes `unknown`; a line that is not JSON becomes `error` (and fails the session, as in
// vik). The first `completed` or `error` event decides the outcome; a process that exits without
// one has failed. Stderr lines are kept as `stderr` events. A session that continues a
// conversation gets its id as $VIK_RESUME_CONVERSATION.
#include <vik/plugin.h>
#include <vik/process_session.hpp>

#include <boost/json.hpp>

#include <cstring>
#include <memory>

namespace {

namespace json = boost::json;

class ScriptedSession final : public vik::sdk::ProcessSession {
  public:
    static std::unique_ptr<ScriptedSession> make(const vik_host_api *, const vik_session_request *req) {
        json::value profile = json::parse(req->profile_json);
        const auto &p = profile.as_object();
        const json::object empty;
        const json::object &settings =
            p.contains("settings") && p.at("settings").is_object() ? p.at("settings").as_object() : empty;
        auto s = std::make_unique<ScriptedSession>();
        if (auto *cmd = settings.if_contains("command"); cmd && cmd->is_string()) {
            s->argv_ = {"sh", "-c", std::string(cmd->as_string())};
        } else if (auto *script = settings.if_contains("script"); script && script->is_string()) {
            std::string path(script->as_string());
            if (!path.empty() && path[0] != '/' && p.contains("workflow_dir") && p.at("workflow_dir").is_string())
                path = std::string(p.at("workflow_dir").as_string()) + "/" + path;
            s->argv_ = {"cat", "--", path};
        } else {
            std::string name = p.contains("name") && p.at("name").is_string() ? std::string(p.at("name").as_string()) : "?";
            throw vik::sdk::Error("scripted-agent: agent profile '" + name + "' needs settings.command or settings.script",
                                  VIK_INVALID_ARGUMENT);
        }
        if (VIK_SESSION_RESUMES(req)) s->resume_ = req->resume_conversation;
        return s;
    }

    std::vector<std::string> argv() const override { return argv_; }
    // A resumed session is told which conversation it continues; the stand-in agent decides what
    // that means (tests print it back as their session_started id).
    std::vector<std::string> extra_env() const override {
        if (resume_.empty()) return {};
        return {"VIK_RESUME_CONVERSATION=" + resume_};
    }

    void on_stdout_line(std::string_view line, bool truncated) override {
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) return; // blank lines carry nothing
        boost::system::error_code ec;
        json::value v = truncated ? json::value() : json::parse(line, ec);
        if (truncated || ec) {
            std::string shown(line.substr(0, 200));
            std::string detail = truncated ? "agent printed a line longer than the line cap: " + shown
                                           : "agent printed a line that is not JSON: " + shown;
            emit(json::serialize(json::object{{"kind", VIK_EVENT_ERROR}, {"detail", detail}}));
            settle(VIK_SESSION_FAILED, detail);
            return;
        }
        const json::value *kind = v.is_object() ? v.as_object().if_contains("kind") : nullptr;
        if (kind == nullptr || !kind->is_string()) {
            std::string type = v.is_object() && v.as_object().contains("type") && v.as_object().at("type").is_string()
                                   ? std::string(v.as_object().at("type").as_string())
                                   : "";
            emit(json::serialize(json::object{{"kind", VIK_EVENT_UNKNOWN}, {"event_type", type}, {"raw", v}}));
            return;
        }
        emit(std::string(line));
        if (kind->as_string() == "completed")
            settle(VIK_SESSION_COMPLETED, "");
        else if (kind->as_string() == "error") {
            auto *d = v.as_object().if_contains("detail");
            settle(VIK_SESSION_FAILED, d && d->is_string() ? std::string(d->as_string()) : "agent reported an error");
        }
    }

    int32_t outcome(int32_t code, int32_t sig, bool cancelled, std::string &detail) override {
        if (settled() == VIK_SESSION_COMPLETED) return VIK_SESSION_COMPLETED;
        if (cancelled) {
            detail = "cancelled";
            return VIK_SESSION_CANCELLED;
        }
        if (settled() == VIK_SESSION_FAILED) {
            detail = settled_detail();
            return VIK_SESSION_FAILED;
        }
        detail = sig != 0    ? "agent was killed by signal " + std::to_string(sig) + " before a terminal event"
                 : code != 0 ? "agent exited with code " + std::to_string(code) + " before a terminal event"
                             : "agent exited without a terminal event";
        return VIK_SESSION_FAILED;
    }

  private:
    std::vector<std::string> argv_;
    std::string resume_;
};

const void *get_interface(const char *id) {
    return std::strcmp(id, VIK_AGENT_RUNTIME_V1) == 0 ? vik::sdk::process_runtime<ScriptedSession>() : nullptr;
}

} // namespace

VIK_PLUGIN("scripted-agent", "0.1.0",
           "A stand-in agent for demos and tests: runs a shell command or replays a JSONL script of events", get_interface);
