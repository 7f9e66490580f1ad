// `vik-host history` and `vik-host stats`: what the durable store keeps (docs/store.md), read
// while a host runs or not (WAL readers do not wait for the writer). Text for people, --json
// for scripts. Issue ids and errors come from strangers: escaped for the terminal.
#include "cli/commands.hpp"
#include "cli/workflow_loading.hpp"
#include "daemon/scoped_root.hpp"
#include "store/open_store.hpp"
#include "store/store_json.hpp"
#include "util/ids_and_time.hpp"
#include "util/json_text.hpp"
#include "util/untrusted_text.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <iostream>

namespace vik::cli {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// The workflow's store, or nullptr after printing why (exit code in `code`). A workflow that
// never ran has no database: that is an empty history, not an error.
std::unique_ptr<store::Store> open_store(const Options &opts, const char *cmd, int &code, bool &empty) {
    code = 0;
    empty = false;
    auto loaded = load_workflow_file(opts.workflow);
    if (!loaded) {
        std::cerr << cmd << " failed: " << loaded.error().message << "\n";
        code = 1;
        return nullptr;
    }
    if (auto refused = daemon::check_scoped_root(loaded->config)) {
        std::cerr << cmd << " failed: " << *refused << "\n";
        code = 1;
        return nullptr;
    }
    auto where = store_choice(loaded->config);
    if (!store::store_exists(where)) {
        empty = true;
        return nullptr;
    }
    auto s = store::open_store(where);
    if (!s) {
        std::cerr << cmd << " failed: " << s.error().message << "\n";
        code = 1;
        return nullptr;
    }
    return std::move(*s);
}

std::string cut(std::string s, size_t n) {
    s = util::escape_for_terminal(s);
    if (s.size() > n) s = s.substr(0, n - 1) + "~";
    return s;
}

std::string cost_text(double c) { return c > 0 ? fmt::format("${:.4f}", c) : std::string("-"); }

} // namespace

int cmd_history(const Options &opts) {
    int code;
    bool empty;
    auto s = open_store(opts, "history", code, empty);
    if (!s && !empty) return code;
    std::vector<store::RunRecord> runs;
    if (s) {
        auto h = s->history(store::HistoryQuery{opts.issue, opts.limit});
        if (!h) {
            std::cerr << "history failed: " << h.error().message << "\n";
            return 1;
        }
        runs = std::move(*h);
    }
    if (opts.json) {
        json::array a;
        for (const auto &r : runs)
            a.push_back(store::to_json(r));
        std::cout << util::json_pretty(a) << "\n";
        return 0;
    }
    if (runs.empty()) {
        std::cout << "no runs on record" << (opts.issue ? " for issue " + util::escape_for_terminal(*opts.issue) : "") << "\n";
        return 0;
    }
    std::cout << fmt::format("{:<24}  {:<16} {:<12} {:>3}  {:<11} {:>8} {:>9} {:>9} {:>10}  {}\n", "STARTED", "ISSUE", "STAGE",
                             "#", "OUTCOME", "SECONDS", "TOK IN", "TOK OUT", "COST", "ERROR");
    for (const auto &r : runs)
        std::cout << fmt::format("{:<24}  {:<16} {:<12} {:>3}  {:<11} {:>8.1f} {:>9} {:>9} {:>10}  {}\n",
                                 util::rfc3339_utc(r.started_at), cut(r.issue_id, 16), cut(r.stage, 12), r.attempt,
                                 store::run_outcome_name(r.outcome), r.duration_sec, r.tokens_in, r.tokens_out,
                                 r.cost_usd ? cost_text(*r.cost_usd) : "-", cut(r.error, 60));
    return 0;
}

int cmd_stats(const Options &opts) {
    int code;
    bool empty;
    auto s = open_store(opts, "stats", code, empty);
    if (!s && !empty) return code;
    store::Stats st;
    if (s) {
        auto r = s->stats();
        if (!r) {
            std::cerr << "stats failed: " << r.error().message << "\n";
            return 1;
        }
        st = std::move(*r);
    }
    if (opts.json) {
        std::cout << util::json_pretty(store::to_json(st)) << "\n";
        return 0;
    }
    auto table = [](const char *title, const std::vector<store::GroupTotals> &g) {
        std::cout << fmt::format("\n{:<20} {:>6} {:>6} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}\n", title, "RUNS", "OK", "FAILED",
                                 "TOK IN", "TOK OUT", "CACHE", "COST", "SECONDS");
        for (const auto &x : g)
            std::cout << fmt::format("{:<20} {:>6} {:>6} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10.1f}\n", cut(x.key, 20),
                                     x.totals.runs, x.totals.successes, x.totals.failures, x.totals.tokens_in,
                                     x.totals.tokens_out, x.totals.tokens_cache_read, cost_text(x.totals.cost_usd),
                                     x.totals.seconds);
    };
    table("TOTAL", {{"all", st.overall}});
    table("AGENT", st.per_agent);
    table("STAGE", st.per_stage);
    table("ISSUE", st.per_issue);
    return 0;
}

} // namespace vik::cli
