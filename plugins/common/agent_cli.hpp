#pragma once
// What the codex and claude-code runtimes share: the agent profile, vik's `args` -> CLI flag
// rules (vik-compat §2), and how a CLI's exit turns into a session outcome.

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parser.hpp>

#include <cstdint>
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
int64_t int_field(const boost::json::object &o, const char *key); // 0 when absent or not an integer

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
    // Parses one stdout line into `v`; false for a blank line (no event) and for a line that is
    // not a JSON object or was cut at the line cap (an `error` event in `out` that fails the
    // session, as in vik).
    bool parse_line(std::string_view line, bool truncated, const char *cli, boost::json::value &v, std::vector<std::string> &out);

  private:
    // One line's document at a time, in an arena reused from line to line (a flooding agent
    // prints hundreds of thousands of lines: an allocation per value showed). A `v` from
    // parse_line lives until the next call.
    alignas(16) unsigned char arena_buffer_[8192];
    boost::json::monotonic_resource arena_{arena_buffer_, sizeof arena_buffer_};
    boost::json::parser parser_;
};

} // namespace vik::agents
