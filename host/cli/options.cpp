#include "cli/options.hpp"

#include "logging/logging.hpp"

#include <cstdlib>
#include <set>

namespace vik::cli {

std::string usage_text() {
    return R"(vik-host: turns an issue tracker into a queue of coding-agent work.

Usage: vik-host [--plugins DIR]... <COMMAND> [OPTIONS] [WORKFLOW]

Commands:
  run [-d] [--port N] [--bind-address IP] [--strict]
                                            run the workflow (foreground, or -d as a daemon); --strict:
                                            a runtime plugin's invalid event fails its session
  run --dry-run                             one pull: what would launch, wait or be cleaned, and why; changes nothing
  doctor [--json] [--strict]                check the workflow and print diagnostics
  status | stop | restart | uninstall       manage the daemon of this workflow (status: its live work
                                            too, when it serves HTTP)
                 [--timeout SEC]            (stop, restart, uninstall: wait this long, default 30)
  plugins                                   list the plugins found and whether they loaded
  issue set-state ID STATE | issue comment ID TEXT|-
                                            change an issue through the workflow's tracker
  issue retry ID [--message TEXT] | issue cancel ID
                                            run a blocked or parked issue again now, with an answer
                                            for its agent / stop an issue's runs (running host)
  gate approve ID | gate reject ID [--feedback TEXT]
                                            let a stage's run that awaits a human gate stand / run
                                            the stage again with feedback for its agent (running host)
  history [ISSUE] [--limit N] [--json]      the runs on record, newest first (docs/store.md)
  tracker pull | tracker fetch ID...        run one call of the workflow's tracker plugin and print its issues
  plugin check PATH [--settings JSON]       load a plugin as the host would, create it, list its problems
  stats [--json]                            runs, outcomes, tokens, cost and time per issue, stage and agent
  refresh                                   ask the running host (its HTTP API) for an intake now

WORKFLOW defaults to ./workflow.yml. With no command, `vik-host --plugins DIR [WORKFLOW]` runs.

Global options:
  --plugins DIR   load plugins from DIR too, after the built-in ones (repeatable)
  --no-builtin-plugins   load only the --plugins directories
  --log-level LEVEL      trace, debug, info (default), warn or error; debug shows plugins' debug lines
  -h, --help      print this help
  -V, --version   print the version
)";
}

std::expected<Options, std::string> parse_options(int argc, char **argv) {
    static const std::set<std::string> commands = {"run",   "doctor",  "status", "stop",    "restart", "uninstall", "plugins",
                                                   "issue", "history", "stats",  "refresh", "tracker", "plugin",    "gate"};
    Options o;
    for (int i = 0; i < argc; ++i)
        o.argv.emplace_back(argv[i]);
    std::vector<std::string> positional;
    bool workflow_set = false;
    auto need_value = [&](int &i, const std::string &flag) -> std::expected<std::string, std::string> {
        if (i + 1 >= argc) return std::unexpected("option '" + flag + "' needs a value\n\n" + usage_text());
        return std::string(argv[++i]);
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        std::string inline_value;
        bool has_inline = false;
        if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
            inline_value = a.substr(a.find('=') + 1);
            a = a.substr(0, a.find('='));
            has_inline = true;
        }
        auto value = [&]() -> std::expected<std::string, std::string> {
            if (has_inline) return inline_value;
            return need_value(i, a);
        };
        if (a == "-h" || a == "--help")
            o.help = true;
        else if (a == "-V" || a == "--version")
            o.version = true;
        else if (a == "--plugins") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            o.plugin_dirs.emplace_back(*v);
        } else if (a == "--settings") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            o.settings = *v;
        } else if (a == "--log-level") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            if (!logging::parse_level(*v))
                return std::unexpected("invalid value '" + *v +
                                       "' for '--log-level': expected trace, debug, info, warn or error");
            o.log_level = *v;
        } else if (a == "--no-builtin-plugins")
            o.no_builtin_plugins = true;
        else if (a == "--json")
            o.json = true;
        else if (a == "--strict")
            o.strict = true;
        else if (a == "-d" || a == "--detach")
            o.detach = true;
        else if (a == "--dry-run")
            o.dry_run = true;
        else if (a == "--port") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            try {
                size_t used = 0;
                int port = std::stoi(*v, &used);
                if (used != v->size() || port < 0 || port > 65535) throw std::out_of_range("port");
                o.port = port;
            } catch (const std::exception &) {
                return std::unexpected("invalid value '" + *v + "' for '--port': expected a number from 0 to 65535");
            }
        } else if (a == "--timeout") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            try {
                size_t used = 0;
                int t = std::stoi(*v, &used);
                if (used != v->size() || t <= 0) throw std::out_of_range("timeout");
                o.timeout_sec = t;
            } catch (const std::exception &) {
                return std::unexpected("invalid value '" + *v + "' for '--timeout': expected a positive number of seconds");
            }
        } else if (a == "--issue") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            o.issue = *v;
        } else if (a == "--message") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            o.message = *v;
        } else if (a == "--feedback") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            o.feedback = *v;
        } else if (a == "--limit") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            try {
                size_t used = 0;
                long n = std::stol(*v, &used);
                if (used != v->size() || n <= 0 || n > 1000000) throw std::out_of_range("limit");
                o.limit = static_cast<size_t>(n);
            } catch (const std::exception &) {
                return std::unexpected("invalid value '" + *v + "' for '--limit': expected a number from 1 to 1000000");
            }
        } else if (a == "--bind-address") {
            auto v = value();
            if (!v) return std::unexpected(v.error());
            o.bind_address = *v;
        } else if (a.size() > 1 && a[0] == '-' && a != "-") {
            return std::unexpected("unexpected argument '" + a + "'\n\n" + usage_text());
        } else if (o.command.empty() && commands.count(a)) {
            o.command = a;
        } else {
            positional.push_back(a);
        }
    }
    if (o.command == "plugin") {
        o.args = positional;
    } else if (o.command == "tracker") {
        // tracker pull [WORKFLOW] | tracker fetch ID... [WORKFLOW]: a last word naming an
        // existing file is the workflow.
        if (positional.size() >= 2 && std::filesystem::is_regular_file(positional.back())) {
            o.workflow = positional.back();
            positional.pop_back();
        }
        o.args = positional;
    } else if (o.command == "issue" || o.command == "gate") {
        // issue <action> <id> [value] [WORKFLOW]; hooks and agents find their workflow through
        // VIK_WORKFLOW_PATH, which the host exports to them.
        o.args = positional;
        if (const char *wf = std::getenv("VIK_WORKFLOW_PATH"); wf && *wf) o.workflow = wf;
    } else {
        // history [ISSUE] [WORKFLOW]: two words are both; one is the workflow when such a file
        // exists, else the issue.
        if (o.command == "history" && !positional.empty() && !o.issue &&
            (positional.size() == 2 || !std::filesystem::exists(positional[0]))) {
            o.issue = positional[0];
            positional.erase(positional.begin());
        }
        if (positional.size() > 1) return std::unexpected("unexpected argument '" + positional[1] + "'\n\n" + usage_text());
        if (positional.size() == 1) {
            if (o.command.empty() && o.plugin_dirs.empty() && !commands.count(positional[0]) &&
                !std::filesystem::exists(positional[0]))
                return std::unexpected("unrecognized subcommand '" + positional[0] + "'\n\n" + usage_text());
            o.workflow = positional[0];
            workflow_set = true;
        }
    }
    if (o.command.empty() && !o.help && !o.version) {
        // `vik-host --plugins dir/ [WORKFLOW]` is the whole deployment: it means run.
        if (o.plugin_dirs.empty() && !workflow_set) return std::unexpected(usage_text());
        o.command = "run";
    }
    return o;
}

} // namespace vik::cli
