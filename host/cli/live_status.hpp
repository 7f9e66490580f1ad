#pragma once
// What a running host is doing, asked through its HTTP API (docs/http-api.md): the live table
// `vik-host status` prints, and `vik-host refresh`.

#include "cli/options.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <string>

namespace vik::workflow {
struct Config;
}
namespace vik::daemon {
struct ServiceState;
}

namespace vik::cli {

// The table of running, retrying and blocked work and the totals, from a /api/v1/state body.
// Untrusted text (ids, titles, messages) is escaped for the terminal. `now` for relative times.
std::string render_live_table(const boost::json::object &state, std::chrono::system_clock::time_point now);

// Appends the live table to `status` output when the host serves HTTP; a line saying why not
// otherwise (never an error: status reports the daemon either way).
void print_live_status(const workflow::Config &cfg, const daemon::ServiceState &state);

int cmd_refresh(const Options &opts);

} // namespace vik::cli
