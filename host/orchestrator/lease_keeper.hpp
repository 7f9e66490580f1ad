#pragma once
// The scheduler's side of leases (store/leases.hpp), when several hosts share the workflow:
// it takes leases for pairs about to be claimed, renews this host's leases and heartbeat, stops
// work whose lease is gone, and takes over work whose host's leases expired.
//
// Every tick (a sixth of the lease time) one call renews the leases and then takes over expired
// ones. Pairs another host took over are reported as lost. Without a successful renewal for two
// thirds of the lease time (the database is away, or this host was paused), every lease is given
// up locally well before it can expire: each of its pairs is reported lost, so its session stops
// and nothing it does afterwards is written (the store refuses it anyway). The deadline is
// measured on this host's clock from the moment the last successful renewal was sent: the
// database's own expiry can only be later, so a third of the lease time is left for the sessions
// to stop before another host may start them.
//
// Threading: the loop's thread. Renewals run on a thread of the keeper's own, so hooks and plugin
// calls filling the BlockingRunner's workers can never hold them up; taking and giving back
// leases for a dispatch runs on the BlockingRunner.

#include "orchestrator/blocking_runner.hpp"
#include "orchestrator/scheduler_clock.hpp"
#include "store/leases.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace vik::orchestrator {

class LeaseKeeper {
  public:
    struct Events {
        // Pairs whose lease this host no longer holds, and why.
        std::function<void(const std::vector<store::PairKey> &pairs, const std::string &why)> lost;
        // Pairs taken over from hosts whose leases expired, as a restart recovers them.
        std::function<void(store::Recovery taken)> adopted;
        // The host's live sessions, for its heartbeat.
        std::function<int64_t()> running;
    };

    LeaseKeeper(boost::asio::io_context &io, SchedulerClock &clock, BlockingRunner &runner, store::Leases &leases, Events events);
    ~LeaseKeeper();
    LeaseKeeper(const LeaseKeeper &) = delete;
    LeaseKeeper &operator=(const LeaseKeeper &) = delete;

    // Starts renewing; the leases the store took at start are valid from now.
    void start();
    // No more take-overs (the host is stopping or draining); renewals go on while work ends.
    void stop_adopting() { adopting_ = false; }
    // Gives up leases taken over but not adopted: they lapse now, for another host to take.
    void let_lapse(std::vector<store::PairKey> pairs);

    // Takes the leases of `wanted` (pairs nobody holds, within the cluster's per-state limits);
    // `done` runs on the loop with those taken (none when the database could not be asked).
    void acquire(std::vector<store::Leases::LeaseRequest> wanted, std::map<std::string, int64_t> state_limits,
                 std::function<void(std::set<store::PairKey>)> done);
    // Gives back leases acquire() took for pairs that were not started.
    void release_unused(std::vector<store::PairKey> pairs);
    // A queued claim of this host is about to run again: may it, within the cluster's per-state
    // limits (store::Leases::resume)? `done` runs on the loop with the answer, or the reason the
    // database could not be asked.
    void resume(store::Leases::LeaseRequest queued, std::map<std::string, int64_t> state_limits,
                std::function<void(std::expected<bool, std::string>)> done);

    // Whether this host fires a schedule's due time (store::Leases::claim_firing). When the
    // database cannot be asked, it does: setting a state twice is harmless, a lost firing is not.
    void claim_firing(std::string schedule, store::WallTime due, std::function<void(bool)> done);

    // Whether work on the pair may still act for this host (a tracker write, say): the store
    // holds its lease and the leases are within their safe time. Loop thread.
    bool holds(const store::PairKey &pair) const { return holding_ && clock_.now() < valid_until_ && leases_.holds(pair); }

    const std::string &host_id() const { return leases_.host_id(); }

  private:
    // What one renewal found: the leases lost, and what it took over.
    struct Answer {
        std::expected<std::vector<store::PairKey>, store::StoreError> lost = std::vector<store::PairKey>{};
        std::optional<std::expected<store::Recovery, store::StoreError>> taken;
    };
    void tick();
    void renewed(Answer &answer, SchedulerClock::time_point sent);

    boost::asio::io_context &io_;
    SchedulerClock &clock_;
    BlockingRunner &runner_;
    store::Leases &leases_;
    Events events_;
    std::unique_ptr<SchedulerTimer> timer_;
    boost::asio::thread_pool renewer_{1}; // renewals and take-overs only
    std::chrono::milliseconds ttl_;
    SchedulerClock::time_point valid_until_{}; // the leases held are safe to use until then
    bool holding_ = false;                     // valid_until_ means something
    bool renewing_ = false;                    // a renewal is in flight
    bool adopting_ = true;
    std::string last_error_; // of the renewals failing in a row
};

} // namespace vik::orchestrator
