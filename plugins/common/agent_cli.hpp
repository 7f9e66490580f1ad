#pragma once
// What the codex and claude-code runtimes share: the agent profile, vik's `args` -> CLI flag
// rules (vik-compat §2), and how a CLI's exit turns into a session outcome.

#include <boost/json/object.hpp>
#include <vik/event_text.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vik::agents {

struct Profile {
    std::string name, runtime, model, command;
    boost::json::object args, settings;
};

Profile parse_profile(const char *profile_json);

// string/number -> `--flag value`; true -> `--flag`; false/null omitted; a list -> one argument
// joined with ','. A key that already starts with '-' is used as written.
std::vector<std::string> args_to_flags(const boost::json::object &args);

// The session outcome once the CLI exited. `settled` is the outcome its output announced (-1 for
// none). A CLI killed by SIGTERM (exit 143) or a signal before a terminal line has failed.
int32_t cli_outcome(const std::string &cli, int32_t settled, const std::string &settled_detail, int32_t exit_code,
                    int32_t term_signal, bool cancelled, const std::string &last_notice, const std::string &stderr_tail,
                    std::string &detail);

// Small JSON helpers for the event mappers.
std::string event(boost::json::object o); // serialize
std::string str(const boost::json::value *v);
std::string_view text_of(const boost::json::value *v);            // a string member's text, "" otherwise
int64_t int_field(const boost::json::object &o, const char *key); // 0 when absent or not an integer

// The events of one stdout line, in one buffer reused from line to line (the SDK's, see
// vik/event_text.hpp): a flooding agent's lines cost no allocation once the buffer has grown.
using vik::sdk::append_json_string;
using vik::sdk::EventList;

// The SDK's EventWriter, plus members that are Boost.JSON values (serialized in place):
//     EventWriter(out, VIK_EVENT_MESSAGE).text("text", t).end();
// The same text as event() of an object with the members in the same order.
class EventWriter {
  public:
    EventWriter(EventList &list, std::string_view kind) : writer_(list, kind) {}
    EventWriter &text(std::string_view key, std::string_view value) {
        writer_.text(key, value);
        return *this;
    }
    EventWriter &integer(std::string_view key, int64_t value) {
        writer_.integer(key, value);
        return *this;
    }
    EventWriter &value(std::string_view key, const boost::json::value &value);
    void end() { writer_.end(); }

  private:
    vik::sdk::EventWriter writer_;
};

// Buffers kept from one line to the next up to this size; a larger one is let go after use.
constexpr size_t kKeptBufferBytes = 64 * 1024;

// What every CLI event mapper tracks: the first terminal outcome its output announced.
struct MapperState {
    int32_t terminal = -1; // VIK_SESSION_COMPLETED / _FAILED once a terminal line was seen
    std::string terminal_detail;
    std::string last_notice; // the latest warning, for failure messages
    void settle(int32_t outcome, const std::string &detail = "") {
        if (terminal >= 0) return;
        terminal = outcome;
        terminal_detail = detail;
    }
    // Parses one stdout line; nullptr for a blank line (no event) and for a line that is not a
    // JSON object or was cut at the line cap (an `error` event in `out` that fails the session,
    // as in vik). The document lives until the next call on this thread, by any mapper: the
    // parser and its arena are one per thread, not one per session (a session that waits costs
    // no parser), so a mapper reads it within map_line and keeps nothing of it.
    const boost::json::value *parse_line(std::string_view line, bool truncated, const char *cli, EventList &out);

  protected:
    // The line's (empty) event list. Buffers are reused from line to line, but not those a rare
    // huge line grew: a session does not keep a megabyte for the rest of its life.
    EventList &start_line() {
        events_.clear();
        events_.shrink_if_over(kKeptBufferBytes);
        return events_;
    }
    EventList events_; // the events of the line mapped last (map_line's answer)
};

} // namespace vik::agents
