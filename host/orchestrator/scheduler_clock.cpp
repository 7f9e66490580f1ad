#include "orchestrator/scheduler_clock.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <optional>

namespace vik::orchestrator {

namespace asio = boost::asio;

namespace {

class AsioTimer final : public SchedulerTimer {
  public:
    explicit AsioTimer(asio::io_context &io) : timer_(io) {}
    void start(std::chrono::milliseconds after, std::function<void()> on_due) override {
        timer_.expires_after(after);
        timer_.async_wait([on_due = std::move(on_due)](const boost::system::error_code &ec) {
            if (!ec) on_due();
        });
    }
    void cancel() override { timer_.cancel(); }

  private:
    asio::steady_timer timer_;
};

class SystemClock final : public SchedulerClock {
  public:
    time_point now() const override { return std::chrono::steady_clock::now(); }
    std::chrono::system_clock::time_point wall_now() const override { return std::chrono::system_clock::now(); }
    std::unique_ptr<SchedulerTimer> make_timer(asio::io_context &io) override { return std::make_unique<AsioTimer>(io); }
};

} // namespace

std::shared_ptr<SchedulerClock> make_system_clock() { return std::make_shared<SystemClock>(); }

// A wait on a ManualClock. The clock may go before its timers (a test's scope), so the timer
// holds it weakly.
class ManualTimer final : public SchedulerTimer {
  public:
    ManualTimer(std::weak_ptr<ManualClock> clock, asio::io_context &io) : clock_(std::move(clock)), io_(io) {}
    ~ManualTimer() override { cancel(); }
    void start(std::chrono::milliseconds after, std::function<void()> on_due) override {
        cancel();
        auto clock = clock_.lock();
        if (!clock) return;
        // The handler checks that this wait is still the live one when it runs: a cancel after
        // the wait fell due (posted, not yet run) must still win.
        auto live = std::make_shared<bool>(true);
        live_ = live;
        key_ = clock->add(clock->now() + after, io_, [live, on_due = std::move(on_due)] {
            if (*live) {
                *live = false;
                on_due();
            }
        });
        // A wait that is due already runs without time moving, as a real timer's would.
        if (after <= std::chrono::milliseconds::zero()) clock->fire_due();
    }
    void cancel() override {
        if (live_) *live_ = false;
        live_.reset();
        if (auto clock = clock_.lock(); clock && key_) clock->remove(*key_);
        key_.reset();
    }

  private:
    std::weak_ptr<ManualClock> clock_;
    asio::io_context &io_;
    std::shared_ptr<bool> live_;
    std::optional<ManualClock::Key> key_;
};

ManualClock::ManualClock()
    : now_(std::chrono::steady_clock::now()), wall_base_(std::chrono::system_clock::now()), steady_base_(now_) {}

ManualClock::ManualClock(std::chrono::system_clock::time_point wall_start) : ManualClock() { wall_base_ = wall_start; }

std::chrono::system_clock::time_point ManualClock::wall_now() const {
    return wall_base_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(now_ - steady_base_);
}

std::unique_ptr<SchedulerTimer> ManualClock::make_timer(asio::io_context &io) {
    return std::make_unique<ManualTimer>(weak_from_this(), io);
}

ManualClock::Key ManualClock::add(time_point due, asio::io_context &io, std::function<void()> on_due) {
    Key key{due, next_order_++};
    waits_.emplace(key, Wait{&io, std::move(on_due)});
    return key;
}

size_t ManualClock::fire_due() {
    size_t n = 0;
    while (!waits_.empty() && waits_.begin()->first.first <= now_) {
        Wait w = std::move(waits_.begin()->second);
        waits_.erase(waits_.begin());
        asio::post(*w.io, std::move(w.on_due));
        ++n;
    }
    return n;
}

size_t ManualClock::advance(std::chrono::milliseconds by) {
    now_ += by;
    return fire_due();
}

bool ManualClock::advance_to_next() {
    if (waits_.empty()) return false;
    if (waits_.begin()->first.first > now_) now_ = waits_.begin()->first.first;
    fire_due();
    return true;
}

std::chrono::milliseconds ManualClock::next_due_in() const {
    if (waits_.empty()) return std::chrono::milliseconds(-1);
    auto d = waits_.begin()->first.first - now_;
    return std::chrono::duration_cast<std::chrono::milliseconds>(d < d.zero() ? d.zero() : d);
}

} // namespace vik::orchestrator
