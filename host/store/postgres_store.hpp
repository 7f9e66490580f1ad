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

#include "store/store.hpp"
#include "store/write_queue.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace vik::store {

struct PostgresOptions {
    WriteQueueOptions queue;
    std::chrono::seconds connect_timeout{5}; // libpq connect_timeout (whole seconds)
    // The running host's store: holds a session advisory lock on the workflow id for as long as
    // it is open, so a second host on the same workflow id is refused at start (until leases let
    // several hosts share one workflow). Readers (history, stats) leave it false.
    bool exclusive = false;
};

class PostgresStore final : public QueuedStore {
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

    struct Impl;

  protected:
    WriteQueue &write_queue() const override;

  private:
    explicit PostgresStore(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace vik::store
