#pragma once
// Leases: how several hosts share one workflow through the store (docs/scale-out.md).
//
// A host may hold a claim on an (issue, stage) only while it holds that pair's lease: a row with
// the holder's host id, a generation and an expiry kept on the database's clock (hosts' clocks
// may be skewed). The lease is taken before the pair is first claimed, renewed with all of the
// host's leases every third of its time to live, and deleted together with the claim when the
// claim is released. Every store write about a pair carries the generation the host held when it
// queued the write (fencing): the database applies it only while that lease is still this host's
// and unexpired, so a host that was partitioned or paused cannot overwrite what its successor did.
// A lease that expired (its host died or lost the database) is taken over by another host with
// the claim it covers, as a restart would recover it.
//
// Only a backend shared by hosts implements this (PostgreSQL); Store::leases() is null otherwise.
// Threading: every call but holds() is synchronous (a database round trip): call from a worker,
// never from the scheduler's loop. Calls are serialised internally.

#include "store/store.hpp"

#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vik::store {

using PairKey = std::pair<std::string, std::string>; // (issue id, stage)

// A host of the workflow as its heartbeat row says.
struct HostRecord {
    std::string host_id, address;
    int64_t pid = 0;
    int64_t running = 0;      // sessions it reported with its last heartbeat
    double heartbeat_age = 0; // seconds since that heartbeat, on the database's clock
    WallTime started_at{};
};

// One lease as it stands.
struct LeaseRecord {
    std::string issue_id, stage, host_id;
    int64_t generation = 0;
    double expires_in = 0; // seconds, on the database's clock (negative: expired)
};

class Leases {
  public:
    virtual ~Leases() = default;

    virtual const std::string &host_id() const = 0;
    virtual std::chrono::milliseconds ttl() const = 0;

    // A pair to lease, with the state its issue is in (what per-state limits count).
    struct LeaseRequest {
        PairKey pair;
        std::string issue_state;
    };
    // Takes the leases of pairs nobody holds (no lease and no claim row), in the order given (the
    // scheduler's candidate order). Returns those taken; a pair another host holds, or whose
    // expired lease awaits a take-over, is left out. `state_limits` (scheduling.
    // max_concurrent_by_state) count across the hosts: a pair is taken only while fewer issues
    // in its issue's state are at work on any host than the limit (issues with a running claim,
    // or leased for a claim not yet written).
    virtual std::expected<std::vector<PairKey>, StoreError> acquire(const std::vector<LeaseRequest> &wanted,
                                                                    const std::map<std::string, int64_t> &state_limits) = 0;
    // Gives back leases taken by acquire() for pairs that were not started after all.
    virtual void release_unused(const std::vector<PairKey> &pairs) = 0;
    // A queued claim of this host (a retry, a continuation) is about to run again under the lease
    // it kept: it takes its place among the issues at work again, counted and taken under the same
    // lock as acquire(), so retries firing on several hosts at once cannot together exceed a
    // per-state limit. Returns whether it may run now (false: its state is full on the hosts, or
    // the lease is no longer this host's; the claim waits). A state without a limit asks nothing.
    virtual std::expected<bool, StoreError> resume(const LeaseRequest &queued,
                                                   const std::map<std::string, int64_t> &state_limits) = 0;
    // Renews every lease this host holds and writes its heartbeat (`running`: its live sessions).
    // Returns the pairs whose lease it held and no longer holds (taken over by another host after
    // they expired): their claims must go, their sessions stop.
    virtual std::expected<std::vector<PairKey>, StoreError> renew(int64_t running) = 0;
    // Forgets every lease locally (renewal failed for too long): from now on no write about those
    // pairs is applied. Returns the pairs.
    virtual std::vector<PairKey> drop_all() = 0;
    // Gives up these leases now (they lapse in the database at once, so another host takes their
    // work over without waiting): work this host took over but will not do (it is stopping).
    virtual void let_lapse(const std::vector<PairKey> &pairs) = 0;
    // Takes over leases that expired and claims no lease covers, and returns what they hold as
    // Store::recover would (runs left `running` on them are now `interrupted`), with the
    // structured outcomes of their issues. Schedules are not part of it.
    virtual std::expected<Recovery, StoreError> take_over(WallTime now) = 0;
    // Whether this host holds the pair's lease as far as its last acquire, renew or take-over
    // knows (no database call; any thread). The caller adds the time check (LeaseKeeper).
    virtual bool holds(const PairKey &pair) const = 0;

    // One intake for the cluster: one host (the intake leader) pulls the tracker and publishes the
    // pull; the others read it instead of spending the tracker's rate limit again.
    // lead_intake: whether this host leads (it holds the workflow's intake lock, taken now when
    // free; the lock lives in a database session, so it moves when its holder dies).
    virtual std::expected<bool, StoreError> lead_intake() = 0;
    virtual std::expected<void, StoreError> publish_pull(const std::string &text) = 0;
    struct SharedPull {
        std::string text, leader;
        double age_sec = 0; // since it was published, on the database's clock
    };
    // The newest pull the leader published, if any.
    virtual std::expected<std::optional<SharedPull>, StoreError> shared_pull() = 0;

    // Schedules: each due time of a schedule is fired by one host only, the first to record it
    // here (the others see it recorded). Returns whether this host fires it.
    virtual std::expected<bool, StoreError> claim_firing(const std::string &schedule, WallTime due) = 0;

    // For operators: the workflow's hosts and leases.
    virtual std::expected<std::vector<HostRecord>, StoreError> hosts() = 0;
    virtual std::expected<std::vector<LeaseRecord>, StoreError> lease_list() = 0;
};

} // namespace vik::store
