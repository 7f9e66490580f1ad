#pragma once
// The scheduler's time: what "now" is and when its timers fire (the intake interval, retry
// backoff, the overall timeout and stall watchdog of a session, deadlines of blocking calls, the
// stop's grace period). The host runs on the system clock (steady_clock and Asio timers); tests
// run the same scheduler on a ManualClock that only moves when the test advances it, so rules
// such as "a failure retries after 10 s" are tested without sleeping (tests/orchestrator/).
//
// Socket deadlines of the control channel and the HTTP server are not scheduling time: they keep
// Asio's steady timers.
//
// Threading: timers are made, started and cancelled on the loop's thread; their handlers run on
// the loop (posted to its io_context), never inside start() or advance().

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace vik::orchestrator {

// A one-shot timer. start() replaces a pending wait; cancel() and destruction mean the handler
// of a pending wait never runs.
class SchedulerTimer {
  public:
    virtual ~SchedulerTimer() = default;
    virtual void start(std::chrono::milliseconds after, std::function<void()> on_due) = 0;
    virtual void cancel() = 0;
};

class SchedulerClock {
  public:
    using time_point = std::chrono::steady_clock::time_point;
    virtual ~SchedulerClock() = default;
    virtual time_point now() const = 0;
    // Wall-clock time matching now(): what views and records show.
    virtual std::chrono::system_clock::time_point wall_now() const = 0;
    virtual std::unique_ptr<SchedulerTimer> make_timer(boost::asio::io_context &io) = 0;

    // Wall-clock time of a scheduler time point (a retry's due time, say).
    std::chrono::system_clock::time_point wall_at(time_point t) const {
        return wall_now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(t - now());
    }
};

// steady_clock and Asio steady timers.
std::shared_ptr<SchedulerClock> make_system_clock();

// Time that moves only when advance() is called. Timers due by then are posted to their loop in
// due order (equal times in start order); the caller then runs the loop (io.poll()) to run them.
class ManualClock final : public SchedulerClock, public std::enable_shared_from_this<ManualClock> {
  public:
    ManualClock();
    // Wall time starts at `wall_start` (a second host in a test that continues a first one's day).
    explicit ManualClock(std::chrono::system_clock::time_point wall_start);
    time_point now() const override { return now_; }
    std::chrono::system_clock::time_point wall_now() const override;
    std::unique_ptr<SchedulerTimer> make_timer(boost::asio::io_context &io) override;

    // Moves time forward by `by`; returns how many timers fell due.
    size_t advance(std::chrono::milliseconds by);
    // Moves time to the earliest pending timer (if any) and fires it with the others due then.
    // Returns false when no timer is pending.
    bool advance_to_next();
    // Timers waiting; the time until the earliest (-1 ms when none).
    size_t pending() const { return waits_.size(); }
    std::chrono::milliseconds next_due_in() const;

  private:
    friend class ManualTimer;
    struct Wait {
        boost::asio::io_context *io;
        std::function<void()> on_due;
    };
    using Key = std::pair<time_point, uint64_t>; // due time, start order
    Key add(time_point due, boost::asio::io_context &io, std::function<void()> on_due);
    void remove(const Key &key) { waits_.erase(key); }
    size_t fire_due();

    time_point now_;
    std::chrono::system_clock::time_point wall_base_;
    time_point steady_base_;
    uint64_t next_order_ = 0;
    std::map<Key, Wait> waits_;
};

} // namespace vik::orchestrator
