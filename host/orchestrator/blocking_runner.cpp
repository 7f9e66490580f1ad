#include "orchestrator/blocking_runner.hpp"

#include <boost/asio/post.hpp>

#include <memory>

namespace vik::orchestrator {

namespace asio = boost::asio;

BlockingRunner::BlockingRunner(asio::io_context &io, SchedulerClock &clock, size_t threads, std::function<void()> settled)
    : io_(io), clock_(clock), pool_(threads), settled_(std::move(settled)) {}

BlockingRunner::~BlockingRunner() { join(); }

void BlockingRunner::join() {
    if (joined_) return;
    joined_ = true;
    pool_.stop();
    pool_.join();
}

void BlockingRunner::run(std::chrono::milliseconds limit, std::function<StepResult()> job, std::function<void(StepResult)> done) {
    auto settled = std::make_shared<bool>(false);
    std::shared_ptr<SchedulerTimer> timer = clock_.make_timer(io_);
    auto shared_done = std::make_shared<std::function<void(StepResult)>>(std::move(done));
    ++inflight_;
    timer->start(limit, [settled, shared_done, limit] {
        if (*settled) return;
        *settled = true;
        (*shared_done)(StepResult{false, "no answer within " + std::to_string(limit.count()) + " ms", {}});
    });
    // The loop's objects (timer, done) travel back to the loop with the answer, so that their
    // last reference is never dropped on a worker.
    asio::post(pool_, [this, job = std::move(job), settled, timer, shared_done]() mutable {
        StepResult r;
        try {
            r = job();
        } catch (const std::exception &e) {
            r = StepResult{false, e.what(), {}};
        }
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
