#pragma once
// One session's record: every event appended as a JSON line to
// sessions/<issue>/<stage>-<uuidv7>.jsonl, and the live snapshot of vik-compat §6
// (provider session id, state, times, last message, token sums, latest rate limits, the question
// of an agent that needs a human: `input_required`).
//
// Appends are buffered: lines reach the file on flush() (the supervisor calls it after each
// batch of events it handles), when the buffer passes `flush_bytes`, and on finish. An event the
// runtime plugin already serialised is checked by a validating scan, not re-parsed into a tree,
// and written as it came with its "at" spliced in; only an event that is not plain (invalid
// UTF-8, spread over lines, carrying its own "at", a rate_limit or input_required kept in the snapshot) takes
// the slow path through a JSON tree.
//
// The file is private (0600, in 0700 directories) and always whole JSON lines of valid UTF-8,
// whatever an agent prints. It is bounded: past `max_file_bytes` one `truncated` event is
// written and later events are only folded into the snapshot. A write error (disk full) is
// logged once, shown in the snapshot as `write_error`, and stops the appends; token counts go on.

#include "util/private_files.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace vik::session {

struct RecorderLimits {
    uint64_t max_file_bytes = 64ull * 1024 * 1024; // per session file
    size_t flush_bytes = 64 * 1024;                // buffered before a write without waiting for flush()
};

class SessionRecorder {
  public:
    // Creates the directory and opens the file for appending; throws std::runtime_error naming
    // the path when it cannot.
    SessionRecorder(std::filesystem::path file, std::string session_id, std::string issue_id, std::string stage,
                    RecorderLimits limits = {});
    ~SessionRecorder() { flush(); }
    SessionRecorder(const SessionRecorder &) = delete;
    SessionRecorder &operator=(const SessionRecorder &) = delete;

    void set_running();
    // Appends one event (a JSON object with "kind"); a payload that is not a JSON object is kept
    // as an `unknown` event with the raw text. Adds "at" (RFC 3339 UTC): the time of the call.
    void record(std::string_view event_json);
    // The same for one event of a batch the caller ends with flush(): the events of the batch
    // get the time its first one was recorded (one clock read per batch, not per event; the
    // events were read from the agent's pipe together anyway), and again after a write the
    // buffer's size forced in the middle of a batch.
    void record_in_batch(std::string_view event_json);
    // Whether the event recorded last was a rate_limit (its fields are then in the snapshot).
    bool took_rate_limit() const { return took_rate_limit_; }
    // What was wrong with the event record() took last, by the event vocabulary (plugin.h,
    // docs/runtimes.md): not an object with a string kind, a kind outside the vocabulary, or a
    // field the host reads (session_id, text, input, output, cache_read, cost_usd) of the wrong
    // type. Empty when it was valid. The event is recorded either way.
    const std::string &event_problem() const { return problem_; }
    // Writes what is buffered (one write call).
    void flush();
    // Terminal state: completed, failed or cancelled, with a reason for the last two. Flushes.
    void finish(const std::string &state, const std::string &detail);

    // Snapshot fields beyond vik's: `write_error` (null, or the reason appends stopped),
    // `truncated` (whether the size cap was reached) and `events_not_written`.
    const boost::json::object &snapshot() const {
        sync_snapshot();
        return snapshot_;
    }
    const std::filesystem::path &file() const { return file_; }
    size_t events() const { return events_; }
    // Events that show the agent at work: messages, tool calls, subagents, token usage.
    size_t work_events() const { return work_events_; }

  private:
    void append(boost::json::object event);
    // A whole line for the file (ends in '\n'), counted against the size cap.
    void append_line(std::string_view line, const std::string &at);
    bool record_plain(std::string_view event_json);
    std::string problem_; // of the last event recorded
    bool took_rate_limit_ = false;
    // The fields of one event the snapshot keeps, read by either path (views into the event
    // being recorded: copied only where the snapshot keeps them).
    struct SnapshotUpdate {
        std::string_view kind;
        std::optional<std::string_view> session_id, text;
        int64_t input = 0, output = 0, cache_read = 0;
        std::optional<double> cost_usd;
    };
    void apply(const SnapshotUpdate &update);
    std::filesystem::path file_;
    util::AppendFile out_;
    RecorderLimits limits_;
    // Fields that change with nearly every event are put into the snapshot when it is read or
    // flushed, not per event.
    void sync_snapshot() const;
    mutable boost::json::object snapshot_;
    mutable std::string pending_message_; // the latest message, when message_pending_
    mutable bool message_pending_ = false;
    mutable bool pending_at_ = false;
    mutable bool not_written_pending_ = false; // not_written_ changed since the snapshot had it
    size_t events_ = 0;
    size_t work_events_ = 0;
    size_t not_written_ = 0;
    bool stopped_ = false; // truncated or failed: no more appends
    std::string buffer_;   // whole lines not written yet
    std::string line_;     // the line record_plain builds (kept: no allocation per event)
    size_t buffered_events_ = 0;
    // The last "at" made, reused within its millisecond (formatting a time per event shows).
    int64_t at_ms_ = -1;
    std::string at_text_;
    bool batch_at_valid_ = false; // at_text_ is the open batch's time (until flush())
    bool in_batch_ = false;       // the event being recorded takes the batch's time
    const std::string &now_text();
};

} // namespace vik::session
