#pragma once
// Blocking work (plugin calls, hooks, prompt commands, directory trees) run on a worker pool
// with a deadline kept on the loop. The one place where the loop hands a call to a worker: the
// job runs on the pool, its answer is posted back; when the deadline passes first, `done` runs
// with a timeout error and the late answer is dropped. Owns the pool and the count of jobs in
// flight (a stop waits for them; a job still in flight after the loop ended is a stuck plugin).
//
// A job still running at its deadline holds a worker; so that a plugin that ignores its timeout
// cannot starve intake and hooks of workers for good, a spare worker joins the pool in its place
// while more such jobs run than spares exist (at most as many spares as workers: a bound,
// reported in the log). A job whose deadline passed while it was queued is not started. The plugin layer refuses
// further calls to a plugin with an overdue call (plugin_call.hpp), so spares are not eaten up
// by the same plugin.
//
// Threading: run() and every `done` on the loop's thread; jobs on the pool's threads.

#include "orchestrator/scheduler_clock.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace vik::orchestrator {

// The outcome of a blocking step.
struct StepResult {
    bool ok = true;
    std::string error;
    std::string value; // e.g. the rendered prompt, the tracker's JSON
};

class BlockingRunner {
  public:
    // `settled` runs on the loop after every job's answer was handled (the owner's "maybe exit").
    // Deadlines are kept on `clock` (scheduling time: a ManualClock in tests).
    BlockingRunner(boost::asio::io_context &io, SchedulerClock &clock, size_t threads, std::function<void()> settled);
    ~BlockingRunner(); // stops and joins the pool: a job still running is waited for
    BlockingRunner(const BlockingRunner &) = delete;
    BlockingRunner &operator=(const BlockingRunner &) = delete;

    // Runs `job` on the pool; `done` runs on the loop with its result, or with a timeout error
    // when it has not answered within `limit`. An exception from `job` is a failed step.
    void run(std::chrono::milliseconds limit, std::function<StepResult()> job, std::function<void(StepResult)> done);

    // Answers `done` with `r` on the loop without a worker, for a step with nothing to do: `done`
    // still runs later, never inside the caller, as it does for run().
    void answer(StepResult r, std::function<void(StepResult)> done);
    // Jobs handed to the pool whose answer has not reached the loop yet.
    size_t inflight() const { return inflight_; }
    // Spare workers added for jobs that overran their deadline.
    size_t spares() const { return spares_.size(); }
    // Stops the pool and joins its threads (idempotent).
    void join();

  private:
    boost::asio::io_context &io_;
    SchedulerClock &clock_;
    boost::asio::thread_pool pool_;
    std::function<void()> settled_;
    std::atomic<size_t> inflight_{0};
    bool joined_ = false;
    size_t threads_;
    std::vector<std::thread> spares_;        // attached to pool_; the loop's thread only
    std::atomic<size_t> overdue_running_{0}; // jobs past their limit that still run

    void add_spare(std::chrono::milliseconds limit);
};

} // namespace vik::orchestrator
