#pragma once
// One session's record: every event appended as a JSON line to
// sessions/<issue>/<stage>-<uuidv7>.jsonl, and the live snapshot of vik-compat §6
// (provider session id, state, times, last message, token sums, latest rate limits).

#include <boost/json/object.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

namespace vik::session {

class SessionRecorder {
public:
    // Creates the directory and opens the file for appending; throws std::runtime_error naming
    // the path when it cannot.
    SessionRecorder(std::filesystem::path file, std::string session_id, std::string issue_id, std::string stage);
    ~SessionRecorder();
    SessionRecorder(const SessionRecorder &) = delete;
    SessionRecorder &operator=(const SessionRecorder &) = delete;

    void set_running();
    // Appends one event (a JSON object with "kind"); a payload that is not a JSON object is kept
    // as an `unknown` event with the raw text. Adds "at" (RFC 3339 UTC).
    void record(const std::string &event_json);
    // Terminal state: completed, failed or cancelled, with a reason for the last two.
    void finish(const std::string &state, const std::string &detail);

    const boost::json::object &snapshot() const { return snapshot_; }
    const std::filesystem::path &file() const { return file_; }
    size_t events() const { return events_; }

private:
    void append(boost::json::object event);
    std::filesystem::path file_;
    std::FILE *out_ = nullptr;
    boost::json::object snapshot_;
    size_t events_ = 0;
};

} // namespace vik::session
