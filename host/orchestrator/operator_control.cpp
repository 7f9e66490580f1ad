#include "orchestrator/operator_control.hpp"

#include "plugins/host_api.hpp"
#include "process/proc_table.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

namespace vik::orchestrator {

namespace {

// Who sent a control request, judged by its ancestry rather than its session (`setsid` is one
// system call away for an agent). The nearest ancestor the host started for an issue (an agent,
// a hook) speaks for it. A process whose ancestry reaches the host without passing one is a
// stray: an orphan an agent left behind (the host adopts them as subreaper), a child of a gate
// command, an agent whose out-of-process runtime has not reported its pid yet. A process that
// cannot be traced (it exited) is a stray too: leaving early must not make a request an
// operator's. Only a process outside the host's tree is an operator.
struct Requester {
    enum class Kind { operator_, child, stray } kind = Kind::operator_;
    std::optional<plugins::SpawnedProcess> child;
};

Requester identify(pid_t pid) {
    const pid_t self = ::getpid();
    for (int depth = 0; depth < 128; ++depth) {
        if (pid == self) return {Requester::Kind::stray, std::nullopt};
        if (pid <= 1) return {};
        if (auto c = plugins::spawned_process(pid)) return {Requester::Kind::child, std::move(c)};
        auto e = process::read_proc_entry(pid);
        if (!e) return {Requester::Kind::stray, std::nullopt};
        pid = e->ppid;
    }
    return {Requester::Kind::stray, std::nullopt};
}

} // namespace

OperatorControl::OperatorControl(boost::asio::io_context &io, const std::filesystem::path &scoped_root, Intake &intake,
                                 SessionSupervisor &sessions, ClaimTable &claims, const FaultGuard &guard, OnRetry on_retry,
                                 OnVerdict on_verdict, OnCancel on_cancel)
    : intake_(intake), sessions_(sessions), claims_(claims), guard_(guard), on_retry_(std::move(on_retry)),
      on_verdict_(std::move(on_verdict)), on_cancel_(std::move(on_cancel)) {
    try {
        server_ = std::make_unique<ControlServer>(
            io, control_socket_name(scoped_root), [this](const ControlRequest &r, const Peer &peer, ControlServer::Reply reply) {
                guard_(r.id, "", [&] { on_request(r.command, r.id, r.value, peer, std::move(reply)); });
            });
    } catch (const std::exception &e) {
        throw std::runtime_error(std::string("cannot open the control channel (another vik-host for this workflow?): ") +
                                 e.what());
    }
}

void OperatorControl::on_request(const std::string &command, const std::string &id, const std::string &value, const Peer &peer,
                                 ControlServer::Reply reply) {
    if (id.empty()) return reply("error an issue id is required");
    Requester who = identify(peer.pid);
    if (who.kind == Requester::Kind::stray) {
        spdlog::warn("control request refused pid={} command={} issue_id={}: the process runs under vik-host but not "
                     "under an agent or hook it knows",
                     peer.pid, command, id);
        return reply("error a process started under vik-host, but not by a known agent or hook, may not use the control "
                     "channel (an agent's detached or orphaned process is still an agent's)");
    }
    if (auto &child = who.child) {
        bool agent = sessions_.is_runtime_plugin(child->plugin_id);
        if (agent && id != child->issue_id)
            return reply("error an agent working on issue " + child->issue_id + " (stage " + child->stage +
                         ") may not change issue '" + id + "'");
        if (agent && (command == "retry" || command == "cancel"))
            return reply("error agents may not " + command + " runs; ask an operator (issue " + child->issue_id + ")");
        if (agent && (command == "approve" || command == "reject"))
            return reply("error agents may not " + command + " a gate: a human decides (issue " + child->issue_id + ")");
        spdlog::info("control request from a child issue_id={} stage={} plugin={} pid={} command={}", child->issue_id,
                     child->stage, child->plugin_id, peer.pid, command);
    }
    if (command == "set-state" || command == "comment") {
        // An agent's write is made for its pair's run: with several hosts, only while this host
        // still holds the pair's lease.
        std::string for_stage = who.child && sessions_.is_runtime_plugin(who.child->plugin_id) ? who.child->stage : "";
        intake_.write(command, id, value,
                      guard_.wrap(id, "",
                                  [this, command, id, value, reply](StepResult r) {
                                      if (!r.ok) return reply("error issue '" + id + "': " + r.error);
                                      if (command == "set-state") {
                                          // The host made this change itself, now: a run finishing now sees the new state at
                                          // once instead of queueing a continuation, and a pull that started before this
                                          // write cannot bring the old state back.
                                          intake_.learn_state(id, value, intake_.now());
                                          spdlog::info("issue state changed issue_id={} state={}", id, value);
                                          return reply("ok issue " + id + " moved to " + value);
                                      }
                                      reply("ok comment added to issue " + id);
                                  }),
                      for_stage);
        return;
    }
    reply(claim_command(command, id, value));
}

size_t OperatorControl::retry(const std::string &id, const std::string &message) {
    auto queued = claims_.retry_now(id, message);
    spdlog::info("operator retry issue_id={} queued={}{}", id, queued.size(), message.empty() ? "" : " with a message");
    on_retry_(id, queued);
    return queued.size();
}

size_t OperatorControl::cancel(const std::string &id) {
    size_t n = sessions_.cancel_issue(id, CancelReason::operator_, "cancelled by an operator") + on_cancel_(id);
    for (const auto &[key, claim] : claims_.all())
        if (key.first == id && claim.state == ClaimState::retry_queued) {
            claims_.block(key, "cancelled by an operator");
            ++n;
        }
    spdlog::info("operator cancel issue_id={} stopped={}", id, n);
    return n;
}

std::string OperatorControl::claim_command(const std::string &command, const std::string &id, const std::string &value) {
    if (command == "retry") {
        size_t queued = retry(id, value);
        if (queued == 0) return "ok issue " + id + " had no blocked or queued stage; nothing to retry";
        return "ok queued " + std::to_string(queued) + " stage(s) of issue " + id + " to run again now" +
               (value.empty() ? "" : ", with your message");
    }
    if (command == "cancel") {
        size_t n = cancel(id);
        if (n == 0) return "ok issue " + id + " had nothing running or queued";
        return "ok cancelled " + std::to_string(n) + " run(s) of issue " + id +
               "; they stay blocked until `vik-host issue retry " + id + "` or a state change";
    }
    if (command == "approve" || command == "reject") {
        auto n = on_verdict_(id, command == "approve", value);
        if (!n) return "error " + n.error();
        return "ok " + std::string(command == "approve" ? "approved " : "rejected ") + std::to_string(*n) +
               " stage(s) of issue " + id +
               (command == "approve" ? "; the issue goes on"
                                     : "; the stage runs again" + std::string(value.empty() ? "" : " with your feedback"));
    }
    return "error unknown command '" + command + "' (expected retry, cancel, approve, reject, set-state or comment)";
}

} // namespace vik::orchestrator
