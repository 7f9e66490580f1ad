#include "orchestrator/gate_runner.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include <csignal>
#include <deque>
#include <mutex>

namespace vik::orchestrator {

namespace asio = boost::asio;

// The last lines of the gate's output: written on the process I/O thread, read on the loop
// after the child exited.
struct GateRunner::Tail {
    std::mutex mutex;
    std::deque<std::string> lines;
    size_t bytes = 0;

    void add(std::string_view line) {
        std::lock_guard lock(mutex);
        lines.emplace_back(line.substr(0, kTailBytes));
        bytes += lines.back().size() + 1;
        while (lines.size() > kTailLines || (bytes > kTailBytes && lines.size() > 1)) {
            bytes -= lines.front().size() + 1;
            lines.pop_front();
        }
    }

    std::string text() {
        std::lock_guard lock(mutex);
        std::string out;
        for (const auto &l : lines)
            out += (out.empty() ? "" : "\n") + l;
        return out;
    }
};

GateRunner::GateRunner(asio::io_context &io, SchedulerClock &clock, process::ProcessService &processes, const FaultGuard &guard)
    : io_(io), clock_(clock), processes_(processes), guard_(guard) {}

// The handles go first: destroying one kills its child and no callback of it runs afterwards.
GateRunner::~GateRunner() { gates_.clear(); }

void GateRunner::run(const PairKey &key, const std::string &script, const std::filesystem::path &workdir,
                     std::vector<std::string> env, std::chrono::milliseconds limit, std::function<void(GateResult)> done) {
    Gate &g = gates_[key];
    g.tail = std::make_shared<Tail>();
    g.limit = limit;
    g.done = std::move(done);
    process::SpawnSpec spec;
    // One stream: the failure reason shows the output in the order the check printed it.
    spec.argv = {"sh", "-c", "exec 2>&1\n" + script};
    spec.cwd = workdir.string();
    spec.env = std::move(env);
    process::ProcessCallbacks cb;
    std::shared_ptr<Tail> tail = g.tail;
    cb.on_stdout = [tail](std::string_view line, bool) { tail->add(line); };
    cb.on_stderr = [tail](std::string_view line, bool) { tail->add(line); };
    cb.on_exit = [this, key](process::ExitStatus status) {
        asio::post(io_, [this, key, status] { guard_(key.first, key.second, [&] { finish(key, status); }); });
    };
    g.timer = clock_.make_timer(io_);
    try {
        g.handle = processes_.spawn(spec, std::move(cb));
    } catch (const std::exception &e) {
        auto finished = std::move(g.done);
        gates_.erase(key);
        return finished(GateResult{false, std::string("the gate could not start: ") + e.what()});
    }
    g.timer->start(limit, [this, key] {
        auto it = gates_.find(key);
        if (it == gates_.end() || it->second.handle->exited()) return; // it ended in time; its answer is on its way
        it->second.timed_out = true;
        it->second.handle->kill(SIGKILL);
    });
}

std::vector<PairKey> GateRunner::cancel(const std::string &issue_id) {
    std::vector<PairKey> killed;
    for (auto it = gates_.lower_bound(PairKey{issue_id, std::string()}); it != gates_.end() && it->first.first == issue_id; ++it)
        if (it->second.handle) {
            it->second.handle->kill(SIGKILL);
            killed.push_back(it->first);
        }
    return killed;
}

void GateRunner::finish(const PairKey &key, process::ExitStatus status) {
    auto it = gates_.find(key);
    if (it == gates_.end()) return;
    Gate g = std::move(it->second);
    gates_.erase(it);
    if (g.timer) g.timer->cancel();
    GateResult r;
    r.passed = !g.timed_out && status.exit_code == 0;
    if (!r.passed) {
        r.reason = g.timed_out              ? fmt::format("timed out after {:g} s", static_cast<double>(g.limit.count()) / 1000)
                   : status.term_signal > 0 ? "killed by signal " + std::to_string(status.term_signal)
                                            : "exited with code " + std::to_string(status.exit_code);
        if (std::string out = g.tail->text(); !out.empty()) r.reason += ": " + out;
    }
    g.done(std::move(r));
}

} // namespace vik::orchestrator
