#pragma once
// The embedded store: one SQLite database per workflow (`<scoped root>/state/vik.db`), WAL mode,
// schema version in `PRAGMA user_version` with forward migrations, files 0600 in 0700 dirs.
//
// Writes go to a bounded queue drained by one writer thread, which applies everything pending
// in one transaction every `flush_interval` (and at close). A failed transaction (disk full,
// locked) is rolled back, its records stay at the head of the queue, the error is logged once,
// and the writer retries with backoff until it succeeds. Only when the queue is full (the disk
// has been failing for a long time) does a write wait for room: losing records is worse.
//
// `open` refuses, with the path and what to do: a database locked by another process (after the
// busy timeout), a corrupt file (quick_check; the file is left as it is, never replaced by an
// empty one), and a schema newer than this build knows (naming both versions).

#include "store/write_queue.hpp"

#include <chrono>
#include <filesystem>
#include <memory>

namespace vik::store {

struct SqliteOptions {
    std::chrono::milliseconds busy_timeout{5000};  // waits for another connection's lock
    std::chrono::milliseconds flush_interval{50};  // the writer's batching window
    size_t queue_capacity = 65536;                 // queued records before a write waits
    size_t max_batch = 4096;                       // records per transaction
    std::chrono::milliseconds retry_min{100};      // first wait after a failed transaction
    std::chrono::milliseconds retry_max{5000};     // cap of the doubling wait
    std::chrono::milliseconds close_timeout{5000}; // how long close waits for the last write
    bool quick_check = true;                       // PRAGMA quick_check at open
};

class SqliteStore final : public QueuedStore {
  public:
    // Opens (creating with 0600, and parent directories with 0700) and migrates the database.
    static std::expected<std::unique_ptr<SqliteStore>, StoreError> open(const std::filesystem::path &file,
                                                                        SqliteOptions options = {});
    // The schema version this build writes (the last migration).
    static int schema_version();

    ~SqliteStore() override; // close(), logging what could not be written
    SqliteStore(const SqliteStore &) = delete;
    SqliteStore &operator=(const SqliteStore &) = delete;

    std::expected<Recovery, StoreError> recover(WallTime now) override;
    std::expected<std::vector<RunRecord>, StoreError> history(const HistoryQuery &query) override;
    std::expected<Stats, StoreError> stats() override;
    std::expected<std::vector<ClaimRecord>, StoreError> claims() override;
    std::string location() const override;

    struct Impl;

  protected:
    WriteQueue &write_queue() const override;

  private:
    explicit SqliteStore(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace vik::store
