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

void BlockingRunner::add_spare(std::chrono::milliseconds limit) {
    if (joined_) return;
    if (spares_.size() >= threads_) {
        spdlog::error("a blocking call is still running past its {} ms limit and holds a worker; all {} spare workers are "
                      "in use by such calls already, so fewer workers remain (a plugin ignores its timeouts: the log "
                      "names it; run it with isolation = \"process\")",
                      limit.count(), threads_);
        return;
    }
    spares_.emplace_back([this] { pool_.attach(); });
    spdlog::warn("a blocking call is still running past its {} ms limit and holds a worker; a spare worker takes its place "
                 "({} of {} spares in use)",
                 limit.count(), spares_.size(), threads_);
}

void BlockingRunner::run(std::chrono::milliseconds limit, std::function<StepResult()> job, std::function<void(StepResult)> done) {
    auto settled = std::make_shared<bool>(false);
    std::shared_ptr<SchedulerTimer> timer = clock_.make_timer(io_);
    auto shared_done = std::make_shared<std::function<void(StepResult)>>(std::move(done));
    auto running = std::make_shared<std::atomic<bool>>(false); // on a worker now (not queued, not returned)
    ++inflight_;
    timer->start(limit, [this, settled, shared_done, limit, running] {
        if (*settled) return;
        *settled = true;
        if (running->load()) add_spare(limit);
        (*shared_done)(StepResult{false, "no answer within " + std::to_string(limit.count()) + " ms", {}});
    });
    // The loop's objects (timer, done) travel back to the loop with the answer, so that their
    // last reference is never dropped on a worker.
    asio::post(pool_, [this, job = std::move(job), settled, timer, shared_done, running]() mutable {
        StepResult r;
        running->store(true);
        try {
            r = job();
        } catch (const std::exception &e) {
            r = StepResult{false, e.what(), {}};
        }
        running->store(false);
        asio::post(io_, [this, r = std::move(r), settled = std::move(settled), timer = std::move(timer),
                         shared_done = std::move(shared_done)]() {
            --inflight_;
            if (!*settled) {
                *settled = true;
                timer->cancel();
                (*shared_done)(r);
            }
            if (settled_) settled_();
        });
    });
}

} // namespace vik::orchestrator
