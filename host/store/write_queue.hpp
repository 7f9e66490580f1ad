#pragma once
// The write path every store backend shares (store.hpp, "Threading contract"): records are queued
// by the scheduler's loop thread without waiting on I/O and applied in order by one writer thread,
// in batches (everything pending, every `flush_interval`, one transaction each). A batch that
// fails (disk full, a lock, a database that restarts) stays at the head of the queue and is
// retried as a whole with a doubling wait; the failure is logged once and reported by
// write_error() until a batch succeeds. Only when the queue is full does a write wait for room:
// losing records is worse. The backend supplies how a batch is applied.

#include "store/store.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <variant>

namespace vik::store {

struct ReleaseClaim {
    std::string issue_id, stage;
    int64_t fence = 0; // as ClaimRecord::fence
};
struct ReleaseIssue {
    std::string issue_id;
};
struct ForgetOutcomes {
    std::string issue_id;
};
// One queued write; the backend's apply function handles each alternative.
using WriteOp = std::variant<ClaimRecord, ReleaseClaim, ReleaseIssue, RunRecord, OutcomeRecord, ForgetOutcomes, ScheduleRecord>;

struct WriteQueueOptions {
    std::chrono::milliseconds flush_interval{50};  // the batching window
    size_t queue_capacity = 65536;                 // queued records before a write waits
    size_t max_batch = 4096;                       // records per transaction
    std::chrono::milliseconds retry_min{100};      // first wait after a failed batch
    std::chrono::milliseconds retry_max{5000};     // cap of the doubling wait
    std::chrono::milliseconds close_timeout{5000}; // how long close waits for the last write
};

class WriteQueue {
  public:
    // Applies one batch in one transaction, on the writer thread; an error text when it failed
    // (the transaction rolled back: the batch is applied again later, as a whole).
    using Apply = std::function<std::expected<void, std::string>(const std::deque<WriteOp> &batch)>;

    // `location` prefixes messages (the database path or connection). Starts the writer thread.
    WriteQueue(std::string location, WriteQueueOptions options, Apply apply);
    ~WriteQueue(); // close(), logging what could not be written
    WriteQueue(const WriteQueue &) = delete;
    WriteQueue &operator=(const WriteQueue &) = delete;

    void push(WriteOp op);
    // Waits until every record queued before the call is applied.
    std::expected<void, StoreError> flush(std::chrono::milliseconds timeout);
    // Writes what is queued (up to close_timeout) and stops the writer. Idempotent; an error
    // names how many records were not written.
    std::expected<void, StoreError> close();

    std::optional<std::string> write_error() const;
    size_t pending() const;
    uint64_t transactions() const;

  private:
    void run();

    std::string location_;
    WriteQueueOptions options_;
    Apply apply_;
    mutable std::mutex mu_;
    std::condition_variable cv_work_; // writer: records, flush requests, stop
    std::condition_variable cv_done_; // flushers, waiting producers: progress
    std::deque<WriteOp> queue_;       // not yet taken by the writer
    size_t inflight_ = 0;             // taken by the writer, not yet applied
    uint64_t queued_seq_ = 0;         // records ever queued
    uint64_t durable_seq_ = 0;        // records ever applied
    uint64_t transactions_ = 0;
    int flush_waiters_ = 0;
    bool stopping_ = false; // drain and exit
    bool abandon_ = false;  // exit now (close timed out)
    bool closed_ = false;
    std::optional<std::string> write_error_;
    std::thread thread_;
};

// A store whose writes go through a WriteQueue: the write half of the Store interface, the same
// for every backend; a backend adds its reads and how a batch is applied.
class QueuedStore : public Store {
  public:
    void record_claim(const ClaimRecord &claim) override { write_queue().push(claim); }
    void release_claim(const std::string &issue_id, const std::string &stage) override {
        write_queue().push(ReleaseClaim{issue_id, stage, 0});
    }
    void release_issue(const std::string &issue_id) override { write_queue().push(ReleaseIssue{issue_id}); }
    void record_run(const RunRecord &run) override { write_queue().push(run); }
    void record_outcome(const OutcomeRecord &outcome) override { write_queue().push(outcome); }
    void forget_outcomes(const std::string &issue_id) override { write_queue().push(ForgetOutcomes{issue_id}); }
    void record_schedule(const ScheduleRecord &fired) override { write_queue().push(fired); }
    std::expected<void, StoreError> flush(std::chrono::milliseconds timeout) override { return write_queue().flush(timeout); }
    std::optional<std::string> write_error() const override { return write_queue().write_error(); }

    // Writes what is queued (up to the queue's close_timeout) and stops the writer. Idempotent;
    // an error when records could not be written (they are lost with the process).
    std::expected<void, StoreError> close() { return write_queue().close(); }
    // Records queued and not yet durable.
    size_t pending() const { return write_queue().pending(); }
    // Transactions committed by the writer (for the benchmark).
    uint64_t transactions() const { return write_queue().transactions(); }

  protected:
    virtual WriteQueue &write_queue() const = 0;
};

} // namespace vik::store
