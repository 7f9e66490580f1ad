#include "store/write_queue.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace vik::store {

WriteQueue::WriteQueue(std::string location, WriteQueueOptions options, Apply apply)
    : location_(std::move(location)), options_(options), apply_(std::move(apply)) {
    if (options_.max_batch == 0) options_.max_batch = 1;
    if (options_.queue_capacity == 0) options_.queue_capacity = 1;
    thread_ = std::thread([this] { run(); });
}

WriteQueue::~WriteQueue() {
    if (auto r = close(); !r) spdlog::error("{}", r.error().message);
}

void WriteQueue::run() {
    auto backoff = options_.retry_min;
    int failed_attempts = 0;
    std::deque<WriteOp> batch; // taken, kept until applied (retried as is after a failure)
    std::unique_lock lk(mu_);
    for (;;) {
        cv_work_.wait(lk, [&] { return abandon_ || stopping_ || !queue_.empty() || !batch.empty(); });
        if (abandon_ || (stopping_ && queue_.empty() && batch.empty())) break;
        if (batch.empty()) {
            // The batching window: gather what arrives meanwhile, unless someone is waiting.
            if (!stopping_ && flush_waiters_ == 0 && queue_.size() < options_.max_batch)
                cv_work_.wait_for(lk, options_.flush_interval, [&] {
                    return abandon_ || stopping_ || flush_waiters_ > 0 || queue_.size() >= options_.max_batch;
                });
            if (abandon_) break;
            // Taken in O(1) when it all fits: the loop thread never waits on a long copy.
            if (queue_.size() <= options_.max_batch) {
                batch.swap(queue_);
            } else {
                auto end = queue_.begin() + static_cast<std::ptrdiff_t>(options_.max_batch);
                batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
                queue_.erase(queue_.begin(), end);
            }
            inflight_ = batch.size();
            cv_done_.notify_all(); // room for producers
        }
        size_t n = batch.size();
        lk.unlock();
        std::expected<void, std::string> result = apply_(batch);
        lk.lock();
        if (result) {
            batch.clear();
            inflight_ = 0;
            durable_seq_ += n;
            ++transactions_;
            if (write_error_) {
                spdlog::info("store writes resumed db={} after {} failed attempt(s); nothing was lost", location_,
                             failed_attempts);
                write_error_.reset();
            }
            failed_attempts = 0;
            backoff = options_.retry_min;
            cv_done_.notify_all();
            continue;
        }
        ++failed_attempts;
        if (!write_error_)
            spdlog::error("store write failed db={} pending={}: {}; the records are kept and retried until the write "
                          "succeeds (free disk space, stop the process locking the database, or bring the database back)",
                          location_, queue_.size() + inflight_, result.error());
        write_error_ = fmt::format("{}: {}", location_, result.error());
        cv_done_.notify_all();
        cv_work_.wait_for(lk, backoff, [&] { return abandon_; });
        backoff = std::min(backoff * 2, options_.retry_max);
    }
    cv_done_.notify_all();
}

void WriteQueue::push(WriteOp op) {
    std::unique_lock lk(mu_);
    if (closed_) {
        spdlog::error("store record dropped db={}: the store is closed", location_);
        return;
    }
    // Only a long write failure fills the queue: then wait rather than lose the record.
    cv_done_.wait(lk, [&] { return abandon_ || queue_.size() + inflight_ < options_.queue_capacity; });
    queue_.push_back(std::move(op));
    ++queued_seq_;
    // The writer sleeps for work only on an empty queue, and in its batching window until the
    // batch is full: a wake-up matters only then (not one futex call per record).
    if (queue_.size() == 1 || queue_.size() >= options_.max_batch) cv_work_.notify_one();
}

std::expected<void, StoreError> WriteQueue::close() {
    size_t lost = 0;
    {
        std::unique_lock lk(mu_);
        if (closed_) return {};
        closed_ = true;
        stopping_ = true;
        cv_work_.notify_all();
        if (!cv_done_.wait_for(lk, options_.close_timeout, [&] { return durable_seq_ >= queued_seq_; })) {
            abandon_ = true;
            cv_work_.notify_all();
            cv_done_.notify_all();
        }
    }
    if (thread_.joinable()) thread_.join();
    std::optional<std::string> err;
    {
        std::lock_guard lk(mu_);
        lost = static_cast<size_t>(queued_seq_ - durable_seq_);
        err = write_error_;
    }
    if (lost > 0)
        return std::unexpected(
            StoreError{StoreError::Kind::io, fmt::format("{}: closed with {} record(s) not written after {} ms: {}", location_,
                                                         lost, options_.close_timeout.count(), err.value_or("unknown error"))});
    return {};
}

std::expected<void, StoreError> WriteQueue::flush(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    uint64_t target = queued_seq_;
    if (durable_seq_ >= target) return {};
    ++flush_waiters_;
    cv_work_.notify_all();
    cv_done_.wait_for(lk, timeout, [&] { return durable_seq_ >= target || abandon_; });
    --flush_waiters_;
    if (durable_seq_ >= target) return {};
    return std::unexpected(StoreError{
        StoreError::Kind::timeout, fmt::format("{}: {} record(s) not yet written after {} ms{}", location_, target - durable_seq_,
                                               timeout.count(), write_error_ ? "; " + *write_error_ : std::string())});
}

std::optional<std::string> WriteQueue::write_error() const {
    std::lock_guard lk(mu_);
    return write_error_;
}

size_t WriteQueue::pending() const {
    std::lock_guard lk(mu_);
    return queue_.size() + inflight_;
}

uint64_t WriteQueue::transactions() const {
    std::lock_guard lk(mu_);
    return transactions_;
}

} // namespace vik::store
