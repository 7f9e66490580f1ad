#include "orchestrator/blocking_runner.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <memory>

namespace vik::orchestrator {

namespace asio = boost::asio;

BlockingRunner::BlockingRunner(asio::io_context &io, SchedulerClock &clock, size_t threads, std::function<void()> settled)
    : io_(io), clock_(clock), pool_(threads), settled_(std::move(settled)), threads_(threads) {}

BlockingRunner::~BlockingRunner() { join(); }

void BlockingRunner::join() {
    if (joined_) return;
    joined_ = true;
    pool_.stop();
    pool_.join();
    for (auto &t : spares_) // attach() returns once the pool stopped and its job (if any) ended
        t.join();
}

// The loop's thread. A spare is added while more jobs overran and still run than spares exist:
// a job that overran and returned leaves its spare to the next one.
void BlockingRunner::add_spare(std::chrono::milliseconds limit) {
    if (joined_ || overdue_running_.load() <= spares_.size()) return;
    if (spares_.size() >= threads_) {
        spdlog::error("a blocking call is still running past its {} ms limit and holds a worker; {} calls overran and "
                      "still run, more than the {} spare workers (a plugin ignores its timeouts: the log names it; run it "
                      "with isolation = \"process\")",
                      limit.count(), overdue_running_.load(), threads_);
        return;
    }
    spares_.emplace_back([this] { pool_.attach(); });
    spdlog::warn("a blocking call is still running past its {} ms limit and holds a worker; a spare worker takes its place "
                 "({} of {} spares)",
                 limit.count(), spares_.size(), threads_);
}

void BlockingRunner::run(std::chrono::milliseconds limit, std::function<StepResult()> job, std::function<void(StepResult)> done) {
    auto settled = std::make_shared<std::atomic<bool>>(false); // `done` ran (with the answer or the timeout)
    std::shared_ptr<SchedulerTimer> timer = clock_.make_timer(io_);
    auto shared_done = std::make_shared<std::function<void(StepResult)>>(std::move(done));
    // 0 queued, 1 running, 2 running past the limit (counted in overdue_running_), 3 returned.
    auto phase = std::make_shared<std::atomic<int>>(0);
    ++inflight_;
    timer->start(limit, [this, settled, shared_done, limit, phase] {
        if (settled->exchange(true)) return;
        int running = 1;
        if (phase->compare_exchange_strong(running, 2)) {
            ++overdue_running_;
            add_spare(limit);
        }
        (*shared_done)(StepResult{false, "no answer within " + std::to_string(limit.count()) + " ms", {}});
    });
    // The loop's objects (timer, done) travel back to the loop with the answer, so that their
    // last reference is never dropped on a worker.
    asio::post(pool_, [this, job = std::move(job), settled, timer, shared_done, phase]() mutable {
        StepResult r;
        // A job whose limit passed while it waited for a worker is not started: its caller was
        // answered already, and a late write (a tracker's set_state) would surprise it.
        phase->store(1); // before the check: a limit passing now counts this job as overdue
        bool late = settled->load();
        if (!late) {
            try {
                r = job();
            } catch (const std::exception &e) {
                r = StepResult{false, e.what(), {}};
            }
        }
        if (phase->exchange(3) == 2) --overdue_running_;
        asio::post(io_, [this, r = std::move(r), settled = std::move(settled), timer = std::move(timer),
                         shared_done = std::move(shared_done)]() {
            --inflight_;
            if (!settled->exchange(true)) {
                timer->cancel();
                (*shared_done)(r);
            }
            if (settled_) settled_();
        });
    });
}

void BlockingRunner::answer(StepResult r, std::function<void(StepResult)> done) {
    ++inflight_;
    asio::post(io_, [this, r = std::move(r), done = std::move(done)] {
        --inflight_;
        done(r);
        if (settled_) settled_();
    });
}

} // namespace vik::orchestrator
