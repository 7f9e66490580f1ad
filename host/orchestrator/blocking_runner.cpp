#include "orchestrator/blocking_runner.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>

namespace vik::orchestrator {

namespace asio = boost::asio;

BlockingRunner::BlockingRunner(asio::io_context &io, size_t threads, std::function<void()> settled)
    : io_(io), pool_(threads), settled_(std::move(settled)) {}

BlockingRunner::~BlockingRunner() { join(); }

void BlockingRunner::join() {
    if (joined_) return;
    joined_ = true;
    pool_.stop();
    pool_.join();
}

void BlockingRunner::run(std::chrono::milliseconds limit, std::function<StepResult()> job, std::function<void(StepResult)> done) {
    auto settled = std::make_shared<bool>(false);
    auto timer = std::make_shared<asio::steady_timer>(io_, limit);
    auto shared_done = std::make_shared<std::function<void(StepResult)>>(std::move(done));
    ++inflight_;
    timer->async_wait([settled, shared_done, limit](const boost::system::error_code &ec) {
        if (ec || *settled) return;
        *settled = true;
        (*shared_done)(StepResult{false, "no answer within " + std::to_string(limit.count()) + " ms", {}});
    });
    asio::post(pool_, [this, job = std::move(job), settled, timer, shared_done]() {
        StepResult r;
        try {
            r = job();
        } catch (const std::exception &e) {
            r = StepResult{false, e.what(), {}};
        }
        asio::post(io_, [this, r = std::move(r), settled, timer, shared_done]() {
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
