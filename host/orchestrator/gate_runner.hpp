#pragma once
// Command gates (issue.stages.S.gate; docs/scheduling.md, "Gates"): after a stage's run
// completed, a check command in the workspace decides whether the completion stands. The
// command runs on the process service, not on a worker: a test suite may take minutes, and the
// few workers carry intake and hooks. Its own session and process group, killed with the host's
// children on a stop, killed at its time limit. The last lines of its output (stdout and stderr
// together) explain a failure to the next attempt.
//
// Threading: the loop's thread; output is gathered on the process I/O thread under a lock.

#include "orchestrator/claims.hpp"
#include "orchestrator/fault_guard.hpp"
#include "orchestrator/scheduler_clock.hpp"
#include "process/process_service.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace vik::orchestrator {

struct GateResult {
    bool passed = false;
    std::string reason; // why it failed: exit code or time limit, and the output's last lines
};

class GateRunner {
  public:
    GateRunner(boost::asio::io_context &io, SchedulerClock &clock, process::ProcessService &processes, const FaultGuard &guard);
    ~GateRunner();
    GateRunner(const GateRunner &) = delete;
    GateRunner &operator=(const GateRunner &) = delete;

    // Runs `script` with `sh -c` in `workdir` with `env`; `done` runs on the loop exactly once
    // (a child that cannot start is a failed gate).
    void run(const PairKey &key, const std::string &script, const std::filesystem::path &workdir, std::vector<std::string> env,
             std::chrono::milliseconds limit, std::function<void(GateResult)> done);

    // Kills the issue's running gates; each still answers (a failed gate), as a stop does.
    // Returns the pairs whose gate was killed.
    std::vector<PairKey> cancel(const std::string &issue_id);

    // The output lines a failure reason keeps, and its bound in bytes.
    static constexpr size_t kTailLines = 20, kTailBytes = 2048;

  private:
    struct Tail;
    struct Gate {
        std::unique_ptr<process::ProcessHandle> handle;
        std::unique_ptr<SchedulerTimer> timer;
        std::shared_ptr<Tail> tail;
        std::chrono::milliseconds limit{0};
        bool timed_out = false;
        std::function<void(GateResult)> done;
    };
    void finish(const PairKey &key, process::ExitStatus status);

    boost::asio::io_context &io_;
    SchedulerClock &clock_;
    process::ProcessService &processes_;
    const FaultGuard &guard_;
    std::map<PairKey, Gate> gates_;
};

} // namespace vik::orchestrator
