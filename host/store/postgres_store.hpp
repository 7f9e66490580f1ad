#pragma once
// The PostgreSQL store (docs/scale-out.md): the Store contract of store.hpp on a database that
// several hosts and several workflows share. Every row carries the workflow id the operator sets
// (not the workflow file's path, which differs between machines), so one database serves many
// workflows. Tables are prefixed `vik_`; the schema version is in `vik_schema`, brought forward by
// the migrations of postgres_schema (under an advisory lock, so hosts starting together migrate
// once).
//
// Writes go through the shared WriteQueue (write_queue.hpp): batched, one transaction each, kept
// and retried while the database is unreachable or restarting (the connection is re-made on the
// next attempt). Reads use a second connection, re-made when it broke. Messages name the server
// and database, never a password.
//
// A running host opens it with a host id: it then implements Leases (leases.hpp), so several
// hosts share the workflow. Every write about a pair is stamped with the generation of the lease
// this host holds on it when it is queued, and applied only while that lease is still this
// host's and unexpired; recover() takes over the leases this host held before a restart and those
// that expired, instead of every claim of the workflow.

#include "store/leases.hpp"
#include "store/store.hpp"
#include "store/write_queue.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace vik::store {

struct PostgresOptions {
    WriteQueueOptions queue;
    std::chrono::seconds connect_timeout{5}; // libpq connect_timeout (whole seconds)
    // The running host's identity (VIK_HOST_ID, else the machine's name): set, the store holds
    // leases (leases.hpp). Empty for readers (history, stats), which take none.
    std::string host_id;
    std::string address;                        // shown to operators beside the host id
    std::chrono::milliseconds lease_ttl{30000}; // store.lease_ttl_sec
};

class PostgresStore final : public QueuedStore, public Leases {
  public:
    // Connects (conninfo: a libpq connection string or postgresql:// URL), checks and migrates
    // the schema. `workflow_id` keys every record of this workflow.
    static std::expected<std::unique_ptr<PostgresStore>, StoreError>
    open(const std::string &conninfo, const std::string &workflow_id, PostgresOptions options = {});
    static int schema_version();

    ~PostgresStore() override;
    PostgresStore(const PostgresStore &) = delete;
    PostgresStore &operator=(const PostgresStore &) = delete;

    std::expected<Recovery, StoreError> recover(WallTime now) override;
    std::expected<std::vector<RunRecord>, StoreError> history(const HistoryQuery &query) override;
    std::expected<Stats, StoreError> stats() override;
    std::expected<std::vector<ClaimRecord>, StoreError> claims() override;
    std::string location() const override;
    Leases *leases() override;

    // Writes about a pair carry its lease's generation (fencing).
    void record_claim(const ClaimRecord &claim) override;
    void release_claim(const std::string &issue_id, const std::string &stage) override;
    void release_issue(const std::string &issue_id) override;
    void record_run(const RunRecord &run) override;
    void record_outcome(const OutcomeRecord &outcome) override;

    // Leases (only with a host id).
    const std::string &host_id() const override;
    std::chrono::milliseconds ttl() const override;
    std::expected<std::vector<PairKey>, StoreError> acquire(const std::vector<LeaseRequest> &wanted,
                                                            const std::map<std::string, int64_t> &state_limits) override;
    void release_unused(const std::vector<PairKey> &pairs) override;
    std::expected<bool, StoreError> resume(const LeaseRequest &queued,
                                           const std::map<std::string, int64_t> &state_limits) override;
    std::expected<std::vector<PairKey>, StoreError> renew(int64_t running) override;
    std::vector<PairKey> drop_all() override;
    void let_lapse(const std::vector<PairKey> &pairs) override;
    std::expected<Recovery, StoreError> take_over(WallTime now) override;
    bool holds(const PairKey &pair) const override;
    std::expected<bool, StoreError> lead_intake() override;
    std::expected<bool, StoreError> claim_firing(const std::string &schedule, WallTime due) override;
    std::expected<void, StoreError> publish_pull(const std::string &text) override;
    std::expected<std::optional<SharedPull>, StoreError> shared_pull() override;
    std::expected<std::vector<HostRecord>, StoreError> hosts() override;
    std::expected<std::vector<LeaseRecord>, StoreError> lease_list() override;

    struct Impl;

  protected:
    WriteQueue &write_queue() const override;

  private:
    explicit PostgresStore(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace vik::store
