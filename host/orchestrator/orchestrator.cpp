#include "orchestrator/orchestrator.hpp"

#include "orchestrator/candidates.hpp"
#include "orchestrator/claims.hpp"
#include "orchestrator/control_channel.hpp"
#include "orchestrator/issue.hpp"
#include "orchestrator/template_context.hpp"
#include "orchestrator/tracker_factory.hpp"
#include "plugins/host_api.hpp"
#include "plugins/instances.hpp"
#include "process/process_service.hpp"
#include "process/run_command.hpp"
#include "session/session_recorder.hpp"
#include "template/template.hpp"
#include "util/ids_and_time.hpp"
#include "workspace/workspace.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace vik::orchestrator {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

uint32_t to_ms(double seconds) { return seconds_to_ms(seconds); }

std::string join(const std::vector<std::string> &v, const char *sep = ",") {
    std::string out;
    for (const auto &s : v) out += (out.empty() ? "" : sep) + s;
    return out;
}

// The outcome of a blocking step run on the worker pool.
struct StepResult {
    bool ok = true;
    std::string error;
    std::string value; // e.g. the rendered prompt
};

} // namespace

// One session of an (issue, stage), from start to finish.
struct StageRun {
    StageRun(asio::io_context &io) : overall(io), stall(io) {}
    std::string issue_id, stage;
    std::string session_id;
    std::unique_ptr<session::SessionRecorder> recorder;
    std::unique_ptr<plugins::AgentSession> session;
    asio::steady_timer overall, stall;
    // Why the host cancelled it, which decides what follows.
    enum class Cancel { none, shutdown, timeout, stall, terminal, left, operator_, fault } cancel = Cancel::none;
    std::string cancel_detail;
    double stall_sec = 0, timeout_sec = 0;
    bool finished = false;
};

using Clock = std::chrono::steady_clock;

// The newest the host knows of an issue, and when that was observed: for a pull or a fetch, the
// time it STARTED (the tracker may answer with what it read then); for a state the host wrote
// itself (`vik-host issue set-state`), the time the write was done. An observation older than
// this never overrides it.
struct Observed {
    Issue issue;
    Clock::time_point at;
    bool partial = false; // only id and state are known (the host wrote a state of an issue it had not seen)
};

// An issue with at least one stage launching or running: it holds a slot.
struct ActiveIssue {
    Issue issue; // as last seen
    std::string key;
    fs::path workdir;
    bool ready = false;               // workspace set up
    std::vector<std::string> waiting; // stages to launch once ready
    std::set<std::string> running;    // stages launching, in a session, or finishing
};

struct Orchestrator::Impl {
    const workflow::Config &cfg;
    const plugins::Registry &registry;
    OrchestratorOptions options;

    asio::io_context io;
    asio::thread_pool pool;
    asio::signal_set signals{io, SIGINT, SIGTERM, SIGHUP};
    asio::steady_timer intake_timer{io};
    asio::steady_timer shutdown_timer{io};

    std::unique_ptr<plugins::TrackerInstance> tracker;
    std::vector<std::unique_ptr<plugins::HooksInstance>> hooks;
    std::map<std::string, std::unique_ptr<plugins::RuntimeInstance>> runtimes; // by runtime name
    std::map<std::string, std::string> profile_json;                           // by agent name
    std::unique_ptr<ControlServer> control;

    ClaimTable claims;
    std::map<std::string, ActiveIssue> active;                          // by issue id
    std::map<PairKey, std::shared_ptr<StageRun>> runs;                  // sessions
    std::map<PairKey, std::shared_ptr<asio::steady_timer>> retry_timers;
    std::map<std::string, Observed> latest;                             // newest known state of each issue
    std::map<std::string, int> absent_strikes;                          // refreshes in a row that did not find a running issue
    std::set<std::string> removal_pending, removing;                    // workspaces to clean
    json::object base;
    int64_t iterations = 0;
    bool stopping = false;    // a signal asked us to stop
    bool intake_done = false; // max_iterations reached: drain and exit
    int signals_seen = 0;
    size_t inflight = 0;      // blocking jobs on the pool not yet posted back
    int exit_code = 0;
    bool prepared = false;

    Impl(const workflow::Config &c, const plugins::Registry &r, OrchestratorOptions o)
        : cfg(c), registry(r), options(std::move(o)), pool(static_cast<size_t>(std::max(1, options.worker_threads))),
          claims(c.scheduling) {}

    bool terminal(const std::string &state) const {
        const auto &t = cfg.scheduling.terminal_states;
        return std::find(t.begin(), t.end(), state) != t.end();
    }

    // ---- invariants --------------------------------------------------------------------------

    // Runs `f`; an exception (a broken invariant: nothing in a loop handler is meant to throw) is
    // logged with its context and blocks the issue instead of leaving the event loop, which would
    // take every other running agent down with the host.
    template <class F>
    void guard(const std::string &id, const std::string &stage, F &&f) noexcept {
        try {
            f();
        } catch (const std::exception &e) {
            on_fault(id, stage, e.what());
        } catch (...) {
            on_fault(id, stage, "unknown exception");
        }
    }

    // `f` wrapped in guard(id, stage), for callbacks the loop runs later.
    template <class F>
    auto guarded(std::string id, std::string stage, F f) {
        return [this, id = std::move(id), stage = std::move(stage), f = std::move(f)](auto &&...args) mutable {
            guard(id, stage, [&] { f(std::forward<decltype(args)>(args)...); });
        };
    }

    // A handler of `id` (and `stage`, when known) threw. Its running sessions are stopped and end
    // blocked; the stage whose handler failed is taken out of the issue's running set (nothing
    // else would end it); the issue's stages are blocked until its state changes or an operator
    // retries. The host goes on.
    void on_fault(const std::string &id, const std::string &stage, const std::string &what) noexcept {
        try {
            spdlog::error("scheduling invariant violated issue_id={} stage={}: {}{}", id.empty() ? "-" : id, stage.empty() ? "-" : stage,
                          what, id.empty() ? "" : "; the issue is blocked");
            if (id.empty()) return;
            std::string reason = "internal error: " + what;
            for (auto &[key, run] : runs)
                if (key.first == id && !run->finished) cancel_run(*run, StageRun::Cancel::fault, reason);
            auto a = active.find(id);
            std::optional<std::string> state;
            if (auto l = latest.find(id); l != latest.end()) state = l->second.issue.state;
            else if (a != active.end()) state = a->second.issue.state;
            if (!stage.empty())
                if (auto r = runs.find({id, stage}); r != runs.end() && r->second->finished) runs.erase(r); // nothing else will end it
            if (!stage.empty() && !runs.count({id, stage})) {
                if (a != active.end()) {
                    a->second.running.erase(stage);
                    std::erase(a->second.waiting, stage);
                }
                claims.block({id, stage}, reason, state);
            }
            for (const auto &s : cfg.stages) {
                const Claim *c = claims.find({id, s.name});
                if (runs.count({id, s.name}) || (c && c->state == ClaimState::running)) continue;
                if (c || (state && s.state == *state)) claims.block({id, s.name}, reason, state);
            }
            if (a != active.end() && a->second.running.empty()) active.erase(a);
            finish_terminal_cleanup(id);
        } catch (const std::exception &e) {
            spdlog::critical("could not contain a scheduling fault issue_id={}: {}", id, e.what());
        } catch (...) {
        }
        maybe_exit();
    }

    // ---- setup ---------------------------------------------------------------------------

    void create_plugins() {
        tracker = create_tracker(cfg, registry);
        for (auto &hp : registry.with_kind(plugins::Kind::hooks)) {
            auto h = plugins::HooksInstance::create(hp, "{}");
            if (!h) throw std::runtime_error("hooks plugin '" + hp->manifest.id + "' refused to start: " + h.error().message);
            hooks.push_back(std::move(*h));
        }
        for (const auto &a : cfg.agents) {
            if (!runtimes.count(a.runtime)) {
                auto rp = registry.find_runtime(a.runtime);
                if (!rp) throw std::runtime_error("no loaded plugin provides runtime '" + a.runtime + "'");
                auto r = plugins::RuntimeInstance::create(rp, "{}");
                if (!r) throw std::runtime_error("runtime plugin '" + rp->manifest.id + "' refused to start: " + r.error().message);
                runtimes[a.runtime] = std::move(*r);
            }
            json::object env;
            for (auto &[k, v] : a.env) env[k] = v;
            profile_json[a.name] = json::serialize(json::object{{"name", a.name},
                                                                {"runtime", a.runtime},
                                                                {"model", a.model},
                                                                {"args", a.args},
                                                                {"command", a.command},
                                                                {"env", env},
                                                                {"settings", a.settings},
                                                                {"workflow_dir", cfg.workflow_dir.string()},
                                                                {"timeout_sec", a.timeout_sec},
                                                                {"stall_timeout_sec", a.stall_timeout_sec}});
        }
    }

    // ---- blocking work on the pool, with a deadline on the loop ------------------------------

    // Runs `job` on the pool; `done` runs on the loop with the result, or with a timeout error
    // when the job has not answered within `limit` (its late answer is then dropped).
    void blocking(std::chrono::milliseconds limit, std::function<StepResult()> job, std::function<void(StepResult)> done) {
        auto settled = std::make_shared<bool>(false);
        auto timer = std::make_shared<asio::steady_timer>(io, limit);
        auto shared_done = std::make_shared<std::function<void(StepResult)>>(std::move(done));
        ++inflight;
        timer->async_wait([settled, shared_done, limit](const boost::system::error_code &ec) {
            if (ec || *settled) return;
            *settled = true;
            (*shared_done)(StepResult{false, "no answer within " + std::to_string(limit.count()) + " ms", {}});
        });
        asio::post(pool, [this, job = std::move(job), settled, timer, shared_done]() {
            StepResult r;
            try {
                r = job();
            } catch (const std::exception &e) {
                r = StepResult{false, e.what(), {}};
            }
            asio::post(io, [this, r = std::move(r), settled, timer, shared_done]() {
                --inflight;
                if (!*settled) {
                    *settled = true;
                    timer->cancel();
                    (*shared_done)(r);
                }
                maybe_exit();
            });
        });
    }

    // ---- hooks -----------------------------------------------------------------------------

    // Runs one lifecycle point through every hooks plugin. Worker thread.
    StepResult run_hook(const std::string &name, const char *event, const std::optional<std::string> &script_template,
                        const Issue &issue, const fs::path &workdir, const std::optional<std::string> &stage) {
        json::object ctx = issue_context(base, issue, workdir, stage);
        json::value script = nullptr;
        if (script_template) {
            std::string where = stage ? "issue.stages." + *stage + ".hooks." + name : "issue.hooks." + name;
            try {
                script = json::string(tmpl::render_shell(*script_template, where, ctx));
            } catch (const tmpl::TemplateError &e) {
                return {false, std::string("hook `") + name + "` template failed: " + e.what(), {}};
            }
        }
        if (hooks.empty()) {
            if (script_template) return {false, "hook `" + name + "` is configured but no hooks plugin is loaded", {}};
            return {};
        }
        json::object env;
        for (auto &[k, v] : issue_environment(cfg, issue, workdir, stage, options.plugin_dirs)) env[k] = v;
        json::object context{{"hook", name},       {"script", script}, {"workdir", workdir.string()},
                             {"env", env},         {"issue", ctx.at("issue")},
                             {"stage", stage ? json::value(*stage) : json::value(nullptr)}};
        std::string text = json::serialize(context);
        for (auto &h : hooks) {
            auto r = h->on_event(event, text, to_ms(cfg.hook_timeout_sec));
            if (!r) return {false, r.error().message, {}};
        }
        return {};
    }

    std::chrono::milliseconds hook_limit() const { return std::chrono::milliseconds(to_ms(cfg.hook_timeout_sec) + 10000); }

    // ---- observations ----------------------------------------------------------------------

    static void set_state(Issue &issue, const std::string &state) {
        issue.state = state;
        issue.fields["state"] = state;
    }

    // Records that `seen` was observed by a pull or fetch that started at `at`, and returns what
    // the host now knows of the issue: `seen` itself, or, when the host learned something newer
    // meanwhile (its own write during the pull), that newer state.
    Issue observe(const Issue &seen, Clock::time_point at) {
        auto it = latest.find(seen.id);
        if (it == latest.end() || at >= it->second.at) {
            latest[seen.id] = Observed{seen, at, false};
            return seen;
        }
        Observed &o = it->second;
        if (o.issue.state != seen.state)
            spdlog::info("stale observation ignored issue_id={} state={}: state '{}' was learned {} ms after it was made", seen.id,
                         seen.state, o.issue.state, std::chrono::duration_cast<std::chrono::milliseconds>(o.at - at).count());
        if (o.partial) {
            Issue merged = seen; // the fields of the observation, the newer state
            set_state(merged, o.issue.state);
            o.issue = std::move(merged);
            o.partial = false;
        }
        return o.issue;
    }

    std::vector<Issue> observe_all(const std::vector<Issue> &seen, Clock::time_point at) {
        std::vector<Issue> out;
        out.reserve(seen.size());
        for (const auto &i : seen) out.push_back(observe(i, at));
        return out;
    }

    // The host itself set the issue's state at `at` (through the tracker, for an agent or a hook).
    void learn_state(const std::string &id, const std::string &state, Clock::time_point at) {
        auto it = latest.find(id);
        if (it == latest.end()) {
            Issue stub;
            stub.id = id;
            set_state(stub, state);
            latest[id] = Observed{std::move(stub), at, true};
            return;
        }
        set_state(it->second.issue, state);
        it->second.at = std::max(it->second.at, at);
    }

    // Whether the host learned anything about the issue after `at` (so an absence observed by a
    // refresh that started at `at` is stale).
    bool known_since(const std::string &id, Clock::time_point at) const {
        auto it = latest.find(id);
        return it != latest.end() && it->second.at > at;
    }

    // Forgets issues that are neither in the pull just handled, nor active, claimed or waiting for
    // removal, nor learned about after that pull started.
    void prune_latest(const std::vector<Issue> &pulled, Clock::time_point started) {
        std::set<std::string> ids;
        for (const auto &i : pulled) ids.insert(i.id);
        for (auto it = latest.begin(); it != latest.end();) {
            const std::string &id = it->first;
            bool keep = ids.count(id) || active.count(id) || claims.has_issue(id) || removal_pending.count(id) || removing.count(id) ||
                        it->second.at > started;
            it = keep ? std::next(it) : latest.erase(it);
        }
        for (auto it = absent_strikes.begin(); it != absent_strikes.end();)
            it = active.count(it->first) ? std::next(it) : absent_strikes.erase(it);
    }

    // ---- intake and reconciliation -----------------------------------------------------------

    void start_intake() {
        if (stopping || intake_done) return;
        uint32_t timeout = to_ms(cfg.pull_timeout_sec);
        Clock::time_point started = Clock::now();
        blocking(std::chrono::milliseconds(timeout + 10000),
                 [this, timeout] {
                     auto r = tracker->pull(timeout);
                     if (!r) return StepResult{false, r.error().message, {}};
                     return StepResult{true, {}, std::move(*r)};
                 },
                 [this, started](StepResult r) { on_pulled(std::move(r), started); });
    }

    void on_pulled(StepResult r, Clock::time_point started) {
        ++iterations;
        if (stopping) return;
        // Whatever happens below, the next cycle is scheduled.
        guard("", "", [&] { process_pull(r, started); });
        if (cfg.max_iterations && iterations >= *cfg.max_iterations) {
            spdlog::info("max_iterations reached iterations={}; draining running stages", iterations);
            intake_done = true;
            maybe_exit();
            return;
        }
        intake_timer.expires_after(std::chrono::seconds(cfg.idle_sec));
        intake_timer.async_wait([this](const boost::system::error_code &ec) {
            if (!ec) guard("", "", [this] { start_intake(); });
        });
    }

    void process_pull(const StepResult &r, Clock::time_point started) {
        if (!r.ok) {
            spdlog::error("intake cycle failed: {} (tracker {})", r.error, tracker->plugin_id());
        } else if (auto parsed = parse_issues(r.value); !parsed) {
            spdlog::error("intake cycle failed: {} (tracker {})", parsed.error(), tracker->plugin_id());
        } else {
            for (const auto &w : parsed->warnings) spdlog::warn("{}", w);
            spdlog::info("issues pulled count={} iteration={}", parsed->issues.size(), iterations);
            // What the pull says, except where the host learned something newer while it ran.
            std::vector<Issue> issues = observe_all(parsed->issues, started);
            reconcile(issues, {}, started);
            for (const auto &i : issues)
                guard(i.id, "", [&] {
                    if (size_t n = claims.clear_blocks_on_state_change(i.id, i.state))
                        spdlog::info("block cleared by a state change issue_id={} state={} stages={}", i.id, i.state, n);
                    if (terminal(i.state)) clean_terminal(i);
                });
            dispatch(issues);
            refresh_missing(issues);
            prune_latest(issues, started);
        }
    }

    // Running sessions whose issue left the stage's state, reached a terminal state, or is no
    // longer visible, are stopped. Refreshed issues update snapshots. `fresh` is already the newest
    // knowledge (observe_all). Absence is judged only for the ids a refresh by id asked for
    // (`asked`; a pull's absence only triggers that refresh); it counts only when nothing newer is
    // known than the refresh that observed it, and stops runs only when two refreshes in a row
    // confirm it: a tracker's momentary hiccup cancels nothing.
    void reconcile(const std::vector<Issue> &fresh, const std::set<std::string> &asked, Clock::time_point started) {
        std::map<std::string, const Issue *> by_id;
        for (const auto &i : fresh) by_id[i.id] = &i;
        std::set<std::string> running_ids;
        for (const auto &[key, run] : runs)
            if (!run->finished && run->cancel == StageRun::Cancel::none) running_ids.insert(key.first);
        std::set<std::string> confirmed_gone;
        for (const auto &id : running_ids) {
            if (by_id.count(id)) {
                absent_strikes.erase(id);
            } else if (asked.count(id) && !known_since(id, started)) {
                int strikes = ++absent_strikes[id];
                if (strikes >= 2) confirmed_gone.insert(id);
                else spdlog::info("issue not visible in the tracker issue_id={} (1 of 2); its runs go on unless the next refresh confirms", id);
            }
        }
        for (auto &[key, run] : runs)
            guard(key.first, key.second, [&] {
                if (run->finished || run->cancel != StageRun::Cancel::none) return;
                auto it = by_id.find(key.first);
                if (it == by_id.end()) {
                    if (confirmed_gone.count(key.first))
                        cancel_run(*run, StageRun::Cancel::left, "the issue is no longer visible in the tracker");
                    return;
                }
                const Issue &issue = *it->second;
                if (auto a = active.find(issue.id); a != active.end()) a->second.issue = issue;
                if (terminal(issue.state))
                    cancel_run(*run, StageRun::Cancel::terminal, "the issue reached terminal state '" + issue.state + "'");
                else if (issue.state != stage_named(key.second).state)
                    cancel_run(*run, StageRun::Cancel::left, "the issue moved to state '" + issue.state + "'");
            });
    }

    // Running issues the pull did not show are refreshed by id; a failed refresh stops nothing.
    void refresh_missing(const std::vector<Issue> &pulled) {
        std::set<std::string> seen;
        for (const auto &i : pulled) seen.insert(i.id);
        std::set<std::string> missing;
        for (const auto &[key, run] : runs)
            if (!seen.count(key.first) && !run->finished) missing.insert(key.first);
        if (missing.empty()) return;
        json::array ids;
        for (const auto &id : missing) ids.push_back(json::string(id));
        uint32_t timeout = to_ms(cfg.pull_timeout_sec);
        std::string ids_json = json::serialize(ids);
        Clock::time_point started = Clock::now();
        blocking(std::chrono::milliseconds(timeout + 10000),
                 [this, ids_json, timeout] {
                     auto r = tracker->fetch(ids_json, timeout);
                     if (!r) return StepResult{false, r.error().message, {}};
                     return StepResult{true, {}, std::move(*r)};
                 },
                 guarded("", "", [this, started, missing](StepResult r) mutable {
                     if (stopping) return;
                     std::expected<IntakeResult, std::string> parsed = r.ok ? parse_issues(r.value) : std::unexpected(r.error);
                     if (!parsed) {
                         spdlog::warn("reconcile refresh failed; running work untouched: {}", parsed.error());
                         return;
                     }
                     for (const auto &w : parsed->warnings) spdlog::warn("{}", w);
                     // An issue the tracker returned malformed is not gone: its run goes on.
                     for (const auto &bad : parsed->skipped) missing.erase(bad.id);
                     reconcile(observe_all(parsed->issues, started), missing, started);
                 }));
    }

    // ---- dispatch --------------------------------------------------------------------------

    std::vector<std::string> running_issue_states() const {
        std::vector<std::string> out;
        for (const auto &[id, a] : active) out.push_back(a.issue.state);
        return out;
    }

    // Whether a new issue in `state` may take a slot now.
    bool has_room(const std::string &id, const std::string &state) const {
        if (active.count(id)) return true; // it holds a slot already
        if (active.size() >= static_cast<size_t>(cfg.max_issue_concurrency)) return false;
        return state_has_room(cfg.scheduling, state, running_issue_states());
    }

    void dispatch(const std::vector<Issue> &issues) {
        std::map<std::string, std::string> state_by_id;
        for (const auto &i : issues) state_by_id[i.id] = i.state;
        for (const Issue *issue : order_candidates(issues))
            guard(issue->id, "", [&] { dispatch_one(*issue, state_by_id); });
    }

    void dispatch_one(const Issue &issue, const std::map<std::string, std::string> &state_by_id) {
        if (terminal(issue.state) || removing.count(issue.id) || removal_pending.count(issue.id)) return;
        std::vector<std::string> matching;
        for (const auto &s : cfg.stages)
            if (s.state == issue.state && !claims.claimed({issue.id, s.name})) matching.push_back(s.name);
        if (matching.empty()) return;
        if (waits_on_blocker(issue, state_by_id, cfg.scheduling.terminal_states)) {
            spdlog::debug("issue waits for its blockers issue_id={}", issue.id);
            return;
        }
        if (!has_room(issue.id, issue.state)) {
            spdlog::debug("no free slot; issue waits issue_id={} running_issues={}", issue.id, active.size());
            return;
        }
        // Claim before any asynchronous work, so a repeated intake cannot launch twice.
        for (const auto &s : matching) claims.start({issue.id, s}, issue.state);
        spdlog::info("issue ready; launching stages issue_id={} state={} stages={}", issue.id, issue.state, join(matching));
        for (const auto &s : matching) guard(issue.id, s, [&] { begin_stage(issue, s); });
    }

    // The claim is running: set the workspace up if needed, then launch.
    void begin_stage(const Issue &issue, const std::string &stage) {
        bool fresh = !active.count(issue.id);
        ActiveIssue &a = active[issue.id];
        a.issue = issue;
        a.running.insert(stage);
        if (fresh) {
            a.key = workspace::safe_key(issue.id);
            a.workdir = cfg.issues_dir() / a.key;
            a.waiting.push_back(stage);
            setup_issue(issue.id);
        } else if (!a.ready) {
            a.waiting.push_back(stage);
        } else {
            launch_stage(issue.id, stage);
        }
    }

    void setup_issue(const std::string &id) {
        ActiveIssue &a = active.at(id);
        Issue issue = a.issue;
        std::string key = a.key;
        fs::path workdir = a.workdir;
        blocking(hook_limit(),
                 [this, issue, key, workdir]() -> StepResult {
                     auto prepared = workspace::ensure_directory(cfg.issues_dir(), key);
                     if (!prepared) return {false, prepared.error(), {}};
                     if (*prepared == workspace::Prepared::existing) return {};
                     if (*prepared == workspace::Prepared::rebuilt)
                         spdlog::warn("workspace was left half-made (its after_create never finished); rebuilt issue_id={}", issue.id);
                     auto hook = run_hook("after_create", VIK_HOOK_AFTER_CREATE, cfg.after_create, issue, workdir, std::nullopt);
                     if (hook.ok) {
                         // Only now does the workspace count as ready.
                         auto ready = workspace::mark_ready(cfg.issues_dir(), key);
                         if (ready) return hook;
                         hook = {false, ready.error(), {}};
                     }
                     // A workspace whose bootstrap failed is removed so the next attempt starts clean.
                     auto removed = workspace::remove_directory(cfg.issues_dir(), key);
                     if (!removed) hook.error += "; also: " + removed.error();
                     return hook;
                 },
                 guarded(id, "", [this, id](StepResult r) {
                     auto it = active.find(id);
                     if (it == active.end()) return;
                     auto waiting = std::move(it->second.waiting);
                     it->second.waiting.clear();
                     if (!r.ok || stopping) {
                         if (!r.ok) spdlog::error("issue setup failed issue_id={}: {}", id, r.error);
                         for (const auto &s : waiting)
                             guard(id, s, [&] { stage_ended(id, s, r.ok ? Outcome::dropped : Outcome::failed, r.error); });
                         return;
                     }
                     it->second.ready = true;
                     for (const auto &s : waiting) {
                         if (removal_pending.count(id)) {
                             // Closed while after_create ran: the stage never starts; the cleanup
                             // deferred until now runs once the issue's last stage has ended.
                             spdlog::info("stage not launched issue_id={} stage={}: the issue reached a terminal state during setup", id, s);
                             guard(id, s, [&] { stage_ended(id, s, Outcome::dropped, ""); });
                         } else {
                             guard(id, s, [&] { launch_stage(id, s); });
                         }
                     }
                 }));
    }

    const workflow::Stage &stage_named(const std::string &name) const {
        for (const auto &s : cfg.stages)
            if (s.name == name) return s;
        throw std::logic_error("unknown stage " + name);
    }

    std::string read_prompt_source(const workflow::Stage &s) const {
        if (s.prompt) return *s.prompt;
        std::ifstream in(*s.prompt_file, std::ios::binary);
        if (!in) throw tmpl::TemplateError("cannot read prompt_file " + s.prompt_file->string() + " of stage '" + s.name + "'");
        std::ostringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    // Worker thread: renders the prompt and expands `exec(...)` commands written in it.
    std::string render_prompt(const workflow::Stage &s, const Issue &issue, const fs::path &workdir, const json::object &run_info) {
        std::string name = s.prompt_file ? s.prompt_file->string() : "issue.stages." + s.name + ".prompt";
        tmpl::Template t(read_prompt_source(s), name);
        json::object ctx = issue_context(base, issue, workdir, s.name);
        for (const auto &kv : run_info) ctx[kv.key()] = kv.value();
        auto segments = t.render(ctx);
        std::vector<std::string> env_list;
        for (auto &[k, v] : issue_environment(cfg, issue, workdir, s.name, options.plugin_dirs)) env_list.push_back(k + "=" + v);
        uint32_t timeout = to_ms(cfg.prompt_command_timeout_sec);
        return tmpl::expand_prompt_commands(segments, [&](const std::string &cmd) {
            process::SpawnSpec spec;
            spec.argv = {"sh", "-c", cmd};
            spec.cwd = workdir.string();
            spec.env = env_list;
            auto out = process::run_command(spec, timeout);
            if (out.timed_out)
                throw tmpl::TemplateError("prompt command `" + cmd + "` timed out after " + std::to_string(timeout) + " ms");
            if (out.status.exit_code != 0)
                throw tmpl::TemplateError("prompt command `" + cmd + "` exited with status " + std::to_string(out.status.exit_code) +
                                          ": " + out.err_tail);
            return out.out;
        });
    }

    void launch_stage(const std::string &id, const std::string &stage_name) {
        const ActiveIssue &a = active.at(id);
        Issue issue = a.issue;
        fs::path workdir = a.workdir;
        const workflow::Stage &s = stage_named(stage_name);
        const Claim *claim = claims.find({id, stage_name});
        // The prompt may adapt to why this run happens: attempt, retry_kind, last_error.
        json::object run_info{{"attempt", claim ? claim->runs : 1},
                              {"retry_kind", claim ? claim->retry_kind : "first"},
                              {"last_error", claim ? claim->last_error : ""}};
        auto limit = std::chrono::milliseconds(2 * to_ms(cfg.hook_timeout_sec) + to_ms(cfg.prompt_command_timeout_sec) * 4 + 20000);
        blocking(limit,
                 [this, issue, workdir, &s, run_info]() -> StepResult {
                     auto hook = run_hook("before_run", VIK_HOOK_BEFORE_RUN, s.before_run, issue, workdir, s.name);
                     if (!hook.ok) return {false, "before_run vetoed the stage: " + hook.error, {}};
                     try {
                         return {true, {}, render_prompt(s, issue, workdir, run_info)};
                     } catch (const std::exception &e) {
                         return {false, std::string("prompt rendering failed: ") + e.what(), {}};
                     }
                 },
                 guarded(id, stage_name, [this, id, stage_name](StepResult r) {
                     if (!r.ok || stopping) {
                         if (!r.ok) spdlog::error("stage aborted issue_id={} stage={}: {}", id, stage_name, r.error);
                         stage_ended(id, stage_name, r.ok ? Outcome::dropped : Outcome::failed, r.error);
                         return;
                     }
                     if (removal_pending.count(id)) {
                         spdlog::info("stage not launched issue_id={} stage={}: the issue reached a terminal state", id, stage_name);
                         stage_ended(id, stage_name, Outcome::dropped, "");
                         return;
                     }
                     start_session(id, stage_name, std::move(r.value));
                 }));
    }

    // ---- sessions --------------------------------------------------------------------------

    // Variables holding the tracker's credentials: kept out of agent environments unless the
    // profile passes them explicitly (pass_env). Hooks keep them; they run the team's own scripts.
    std::set<std::string> tracker_secrets(const workflow::AgentProfile &profile) const {
        auto listed = tracker_secret_names(cfg);
        std::set<std::string> names(listed.begin(), listed.end());
        for (const auto &keep : profile.pass_env) names.erase(keep);
        return names;
    }

    void start_session(const std::string &id, const std::string &stage_name, std::string prompt) {
        ActiveIssue &a = active.at(id);
        const workflow::Stage &s = stage_named(stage_name);
        const workflow::AgentProfile &profile = *cfg.agent(s.agent);
        auto run = std::make_shared<StageRun>(io);
        run->issue_id = id;
        run->stage = stage_name;
        run->session_id = util::uuid_v7();
        run->timeout_sec = profile.timeout_sec;
        run->stall_sec = profile.stall_timeout_sec;
        fs::path file = cfg.sessions_dir() / a.key / (stage_name + "-" + run->session_id + ".jsonl");
        try {
            run->recorder = std::make_unique<session::SessionRecorder>(file, run->session_id, id, stage_name);
        } catch (const std::exception &e) {
            spdlog::error("session not started issue_id={} stage={}: {}", id, stage_name, e.what());
            stage_ended(id, stage_name, Outcome::failed, e.what());
            return;
        }
        runs[{id, stage_name}] = run;

        std::weak_ptr<StageRun> weak = run;
        plugins::SessionListener listener;
        // Events arrive on the loop in batches, with a bounded number in flight per session: a
        // flooding agent blocks on its pipe instead of growing the host's memory.
        listener.dispatch = [this](std::function<void()> f) { asio::post(io, std::move(f)); };
        listener.on_event = [this, weak](std::string event) {
            if (auto r = weak.lock()) guard(r->issue_id, r->stage, [&] { on_event(*r, event); });
        };
        listener.on_finish = [this, weak](int32_t outcome, std::string detail) {
            if (auto r = weak.lock()) guard(r->issue_id, r->stage, [&] { on_finish(r, outcome, detail); });
        };
        plugins::SessionStart req;
        req.session_id = run->session_id;
        req.profile_json = profile_json.at(profile.name);
        req.prompt = std::move(prompt);
        req.workdir = a.workdir.string();
        // The profile's env overrides what the agent would inherit (one entry per name).
        std::set<std::string> overridden;
        for (auto &[k, v] : profile.env) overridden.insert(k);
        auto secrets = tracker_secrets(profile);
        for (auto &[k, v] : issue_environment(cfg, a.issue, a.workdir, stage_name, options.plugin_dirs))
            if (!secrets.count(k) && !overridden.count(k)) req.env.push_back(k + "=" + v);
        for (auto &[k, v] : profile.env) req.env.push_back(k + "=" + v);
        auto started = runtimes.at(profile.runtime)->start(req, std::move(listener));
        if (!started) {
            std::string err = "agent session could not start: " + started.error().message;
            run->recorder->record(json::serialize(json::object{{"kind", "error"}, {"detail", err}}));
            on_finish(run, VIK_SESSION_FAILED, err);
            return;
        }
        run->session = std::move(*started);
        run->recorder->set_running();
        spdlog::info("session started issue_id={} stage={} session_id={} agent={} file={}", id, stage_name, run->session_id,
                     profile.name, file.string());
        if (run->timeout_sec > 0) {
            run->overall.expires_after(std::chrono::milliseconds(to_ms(run->timeout_sec)));
            run->overall.async_wait([this, weak](const boost::system::error_code &ec) {
                auto r = weak.lock();
                if (ec || !r || r->finished) return;
                guard(r->issue_id, r->stage, [&] { cancel_run(*r, StageRun::Cancel::timeout, ""); });
            });
        }
        arm_stall(run);
    }

    // The stall watchdog: a deadline moved forward by every agent event.
    void arm_stall(const std::shared_ptr<StageRun> &run) {
        if (run->stall_sec <= 0) return;
        run->stall.expires_after(std::chrono::milliseconds(to_ms(run->stall_sec)));
        std::weak_ptr<StageRun> weak = run;
        run->stall.async_wait([this, weak](const boost::system::error_code &ec) {
            auto r = weak.lock();
            if (ec || !r || r->finished) return;
            guard(r->issue_id, r->stage, [&] { cancel_run(*r, StageRun::Cancel::stall, ""); });
        });
    }

    void cancel_run(StageRun &run, StageRun::Cancel why, const std::string &detail) {
        if (run.finished || run.cancel != StageRun::Cancel::none) return;
        run.cancel = why;
        run.cancel_detail = detail;
        if (!detail.empty()) spdlog::info("stopping session issue_id={} stage={}: {}", run.issue_id, run.stage, detail);
        if (run.session) run.session->cancel();
    }

    void on_event(StageRun &run, const std::string &event) {
        if (run.finished) return;
        run.recorder->record(event);
        auto it = runs.find({run.issue_id, run.stage});
        if (it != runs.end() && run.cancel == StageRun::Cancel::none) arm_stall(it->second);
    }

    void on_finish(const std::shared_ptr<StageRun> &run, int32_t outcome, const std::string &detail) {
        if (run->finished) return;
        run->finished = true;
        run->overall.cancel();
        run->stall.cancel();
        using C = StageRun::Cancel;
        std::string state = outcome == VIK_SESSION_COMPLETED ? "completed" : outcome == VIK_SESSION_FAILED ? "failed" : "cancelled";
        std::string reason = detail;
        if (run->cancel == C::timeout) {
            state = "failed";
            reason = "timed out after " + std::to_string(to_ms(run->timeout_sec)) + "ms";
        } else if (run->cancel == C::stall) {
            state = "failed";
            reason = "stalled for " + std::to_string(to_ms(run->stall_sec)) + "ms without agent activity";
        } else if (run->cancel != C::none && state != "completed") {
            state = "cancelled";
            reason = run->cancel == C::shutdown ? "cancelled: vik-host is stopping" : "cancelled: " + run->cancel_detail;
        }
        if (state == "failed" && run->cancel != C::none)
            run->recorder->record(json::serialize(json::object{{"kind", "error"}, {"detail", reason}}));
        run->recorder->finish(state, reason);
        const auto &tokens = run->recorder->snapshot().at("tokens").as_object();
        auto level = state == "completed" ? spdlog::level::info : state == "cancelled" ? spdlog::level::warn : spdlog::level::err;
        spdlog::log(level, "session finished issue_id={} stage={} session_id={} state={} input_tokens={} output_tokens={}{}",
                    run->issue_id, run->stage, run->session_id, state, json::serialize(tokens.at("input")),
                    json::serialize(tokens.at("output")), reason.empty() ? "" : " error=" + reason);
        run->session.reset(); // the plugin releases its session now that finish was delivered
        std::string id = run->issue_id, stage = run->stage;
        Outcome o = state == "completed" ? Outcome::completed : state == "failed" ? Outcome::failed : Outcome::dropped;
        if (state == "cancelled") {
            // vik: no after_run for a cancelled session. What follows depends on who cancelled.
            if (run->cancel == C::operator_) o = Outcome::blocked_by_operator;
            else if (run->cancel == C::fault) o = Outcome::blocked_by_fault;
            else if (run->cancel == C::terminal) removal_pending.insert(id);
            stage_ended(id, stage, o, reason);
            return;
        }
        auto a = active.find(id);
        Issue issue;
        issue.id = id;
        if (a != active.end()) issue = a->second.issue;
        else if (auto l = latest.find(id); l != latest.end()) issue = l->second.issue;
        fs::path workdir = a != active.end() ? a->second.workdir : cfg.issues_dir() / workspace::safe_key(id);
        const workflow::Stage &s = stage_named(stage);
        blocking(hook_limit(),
                 [this, issue, workdir, &s]() { return run_hook("after_run", VIK_HOOK_AFTER_RUN, s.after_run, issue, workdir, s.name); },
                 guarded(id, stage, [this, id, stage, o, reason](StepResult r) {
                     if (!r.ok) spdlog::error("after_run failed issue_id={} stage={}: {}", id, stage, r.error);
                     stage_ended(id, stage, o, reason);
                 }));
    }

    // ---- outcomes: every claim transition after a run goes through here -------------------------

    enum class Outcome { completed, failed, dropped, blocked_by_operator, blocked_by_fault };

    // Total: a stage may end on a claim that is gone (released by an operator or a cleanup
    // meanwhile); it is then simply over.
    void stage_ended(const std::string &id, const std::string &stage, Outcome outcome, const std::string &reason) {
        PairKey key{id, stage};
        runs.erase(key);
        // The issue's bookkeeping first, so that nothing below can leave it holding a slot.
        auto a = active.find(id);
        if (a != active.end()) {
            a->second.running.erase(stage);
            std::erase(a->second.waiting, stage);
            if (a->second.running.empty()) active.erase(a);
        }
        if (stopping) {
            claims.release(key);
        } else if (removal_pending.count(id)) {
            // The issue is terminal: nothing follows, whatever the outcome.
            claims.release(key);
        } else {
            std::expected<Decision, std::string> d = Decision{};
            switch (outcome) {
            case Outcome::completed: {
                auto it = latest.find(id);
                bool still = it != latest.end() && it->second.issue.state == stage_named(stage).state;
                d = claims.completed(key, still);
                break;
            }
            case Outcome::failed: d = claims.failed(key, reason); break;
            case Outcome::blocked_by_operator:
            case Outcome::blocked_by_fault: {
                std::string why = outcome == Outcome::blocked_by_operator ? "cancelled by an operator" : reason;
                claims.block(key, why);
                d = Decision{Decision::block, 0, 0, why};
                break;
            }
            case Outcome::dropped: claims.release(key); break;
            }
            if (!d) {
                spdlog::info("stage ended on a released claim issue_id={} stage={}: {}; nothing follows", id, stage, d.error());
            } else if (d->kind == Decision::retry) {
                spdlog::info("retry queued issue_id={} stage={} kind={} in_ms={} reason={}", id, stage, claims.find(key)->retry_kind,
                             to_ms(d->delay_sec), d->reason);
                arm_retry(key, d->token, d->delay_sec);
            } else if (d->kind == Decision::block) {
                spdlog::warn("stage blocked issue_id={} stage={}: {}", id, stage, d->reason);
            }
        }
        finish_terminal_cleanup(id);
        maybe_exit();
    }

    // Terminal cleanup deferred while stages of the issue were launching, running or finishing:
    // once the last one has ended, the issue's claims go and its workspace is removed.
    void finish_terminal_cleanup(const std::string &id) {
        if (active.count(id) || !removal_pending.count(id)) return;
        removal_pending.erase(id);
        claims.release_issue(id);
        for (auto it = retry_timers.begin(); it != retry_timers.end();)
            it = it->first.first == id ? (it->second->cancel(), retry_timers.erase(it)) : std::next(it);
        auto it = latest.find(id);
        Issue issue;
        if (it != latest.end()) issue = it->second.issue;
        else issue.id = id;
        remove_workspace(issue);
    }

    void arm_retry(const PairKey &key, uint64_t token, double delay_sec) {
        auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(to_ms(delay_sec)));
        if (auto old = retry_timers.find(key); old != retry_timers.end()) old->second->cancel();
        retry_timers[key] = timer;
        timer->async_wait([this, key, token](const boost::system::error_code &ec) {
            if (ec) return;
            guard(key.first, key.second, [&] { fire_retry(key, token); });
        });
    }

    // A retry timer fired: re-fetch the issue and launch only if it is still eligible.
    void fire_retry(const PairKey &key, uint64_t token) {
        if (stopping || intake_done || !claims.token_current(key, token)) return; // stale timers do nothing
        retry_timers.erase(key);
        uint32_t timeout = to_ms(cfg.pull_timeout_sec);
        std::string ids = json::serialize(json::array{json::string(key.first)});
        Clock::time_point started = Clock::now();
        blocking(std::chrono::milliseconds(timeout + 10000),
                 [this, ids, timeout] {
                     auto r = tracker->fetch(ids, timeout);
                     if (!r) return StepResult{false, r.error().message, {}};
                     return StepResult{true, {}, std::move(*r)};
                 },
                 guarded(key.first, key.second, [this, key, token, started](StepResult r) {
                     if (stopping || intake_done || !claims.token_current(key, token)) return;
                     std::expected<IntakeResult, std::string> parsed = r.ok ? parse_issues(r.value) : std::unexpected(r.error);
                     if (!parsed) {
                         auto d = claims.requeue_no_slot(key);
                         spdlog::warn("retry postponed issue_id={} stage={}: cannot refresh the issue: {}", key.first, key.second,
                                      parsed.error());
                         if (d) arm_retry(key, d->token, d->delay_sec);
                         return;
                     }
                     // The newest knowledge: the fetch's answer unless the host learned more since it began.
                     std::optional<Issue> issue;
                     for (const auto &i : parsed->issues)
                         if (i.id == key.first) issue = observe(i, started);
                     if (auto l = latest.find(key.first); !issue && l != latest.end() && l->second.at > started && !l->second.partial)
                         issue = l->second.issue;
                     if (!issue || issue->state != stage_named(key.second).state || terminal(issue->state)) {
                         spdlog::info("retry dropped issue_id={} stage={}: the issue is {}", key.first, key.second,
                                      issue ? "now in state '" + issue->state + "'" : "gone");
                         claims.release(key);
                         return;
                     }
                     if (!has_room(issue->id, issue->state)) {
                         auto d = claims.requeue_no_slot(key);
                         if (!d) return;
                         spdlog::info("retry queued issue_id={} stage={} kind={} in_ms={} reason={}", key.first, key.second,
                                      claims.find(key)->retry_kind, to_ms(d->delay_sec), d->reason);
                         arm_retry(key, d->token, d->delay_sec);
                         return;
                     }
                     const Claim &c = claims.start(key, issue->state);
                     spdlog::info("retry launching issue_id={} stage={} kind={} attempt={}", key.first, key.second, c.retry_kind, c.runs);
                     begin_stage(*issue, key.second);
                 }));
    }

    // ---- workspaces of terminal issues ---------------------------------------------------------

    // A terminal issue's claims are released and its workspace removed. While any stage of it is
    // still launching, running or finishing (its after_run, say), only its idle claims go: the rest
    // waits for the last stage to end (finish_terminal_cleanup), so no stage ends on a claim that
    // vanished under it.
    void clean_terminal(const Issue &issue) {
        if (active.count(issue.id)) {
            claims.release_idle(issue.id);
            if (removal_pending.insert(issue.id).second)
                spdlog::info("terminal cleanup deferred issue_id={}: {} stage(s) still running", issue.id, active.at(issue.id).running.size());
            return;
        }
        claims.release_issue(issue.id);
        std::error_code ec;
        if (fs::exists(cfg.issues_dir() / workspace::safe_key(issue.id), ec)) remove_workspace(issue);
    }

    void remove_workspace(const Issue &issue) {
        if (stopping || removing.count(issue.id)) return;
        removing.insert(issue.id);
        std::string key = workspace::safe_key(issue.id);
        fs::path workdir = cfg.issues_dir() / key;
        blocking(hook_limit(),
                 [this, issue, key, workdir]() -> StepResult {
                     auto hook = run_hook("before_remove", VIK_HOOK_BEFORE_REMOVE, cfg.before_remove, issue, workdir, std::nullopt);
                     if (!hook.ok) spdlog::error("before_remove failed issue_id={}: {}", issue.id, hook.error);
                     auto removed = workspace::remove_directory(cfg.issues_dir(), key);
                     if (!removed) return StepResult{false, removed.error(), {}};
                     return StepResult{};
                 },
                 [this, id = issue.id](StepResult r) {
                     removing.erase(id);
                     if (!r.ok) spdlog::error("workspace not removed issue_id={}: {}", id, r.error);
                     else spdlog::info("workspace removed issue_id={} (terminal state)", id);
                 });
    }

    // ---- operator control ----------------------------------------------------------------------

    // Operator and agent requests from the control channel. Tracker writes run here, with the
    // host's credentials, so agents can move issues without ever holding the tracker's token.
    //
    // A request from a process an agent runtime started (found by the peer's session) may only
    // concern that agent's own issue, and may not retry or cancel runs: an agent follows its
    // instructions, and those come partly from issue text. This is a guard, not authentication:
    // a same-user process can leave its session (docs/security.md).
    void on_control(const std::string &command, const std::string &id, const std::string &value, const Peer &peer,
                    ControlServer::Reply reply) {
        if (id.empty()) return reply("error an issue id is required");
        if (auto child = plugins::spawned_process(peer.sid)) {
            bool agent = std::any_of(runtimes.begin(), runtimes.end(),
                                     [&](const auto &kv) { return kv.second->plugin_id() == child->plugin_id; });
            if (agent && id != child->issue_id)
                return reply("error an agent working on issue " + child->issue_id + " (stage " + child->stage +
                             ") may not change issue '" + id + "'");
            if (agent && (command == "retry" || command == "cancel"))
                return reply("error agents may not " + command + " runs; ask an operator (issue " + child->issue_id + ")");
            spdlog::info("control request from a child issue_id={} stage={} plugin={} pid={} command={}", child->issue_id, child->stage,
                         child->plugin_id, peer.pid, command);
        }
        if (command == "set-state" || command == "comment") {
            uint32_t timeout = to_ms(cfg.pull_timeout_sec);
            blocking(std::chrono::milliseconds(timeout + 10000),
                     [this, command, id, value, timeout]() -> StepResult {
                         auto r = command == "set-state" ? tracker->set_state(id, value, timeout) : tracker->comment(id, value, timeout);
                         if (!r) return {false, r.error().message, {}};
                         return {};
                     },
                     guarded(id, "", [this, command, id, value, reply](StepResult r) {
                         if (!r.ok) return reply("error issue '" + id + "': " + r.error);
                         if (command == "set-state") {
                             // The host made this change itself, now: a run finishing now sees the
                             // new state at once instead of queueing a continuation, and a pull that
                             // started before this write cannot bring the old state back.
                             learn_state(id, value, Clock::now());
                             spdlog::info("issue state changed issue_id={} state={}", id, value);
                             return reply("ok issue " + id + " moved to " + value);
                         }
                         reply("ok comment added to issue " + id);
                     }));
            return;
        }
        reply(control_command(command, id));
    }

    std::string control_command(const std::string &command, const std::string &id) {
        if (command == "retry") {
            size_t cleared = claims.clear_for_retry(id);
            for (auto it = retry_timers.begin(); it != retry_timers.end();)
                it = it->first.first == id ? (it->second->cancel(), retry_timers.erase(it)) : std::next(it);
            spdlog::info("operator retry issue_id={} cleared={}", id, cleared);
            if (cleared == 0) return "ok issue " + id + " had no blocked or queued stage; nothing to clear";
            // The next intake sees the issue unclaimed; run it now instead of waiting idle_sec.
            if (!stopping && !intake_done && inflight == 0) {
                intake_timer.cancel();
                asio::post(io, [this] { start_intake(); });
            }
            return "ok cleared " + std::to_string(cleared) + " stage(s) of issue " + id + "; they run again on the next intake";
        }
        if (command == "cancel") {
            size_t n = 0;
            for (auto &[key, run] : runs)
                if (key.first == id && !run->finished) {
                    cancel_run(*run, StageRun::Cancel::operator_, "cancelled by an operator");
                    ++n;
                }
            for (const auto &[key, claim] : claims.all())
                if (key.first == id && claim.state == ClaimState::retry_queued) {
                    claims.block(key, "cancelled by an operator");
                    ++n;
                }
            spdlog::info("operator cancel issue_id={} stopped={}", id, n);
            if (n == 0) return "ok issue " + id + " had nothing running or queued";
            return "ok cancelled " + std::to_string(n) + " run(s) of issue " + id + "; they stay blocked until `vik-host issue retry " +
                   id + "` or a state change";
        }
        return "error unknown command '" + command + "' (expected retry, cancel, set-state or comment)";
    }

    // ---- stopping --------------------------------------------------------------------------

    void wait_signals() {
        signals.async_wait([this](const boost::system::error_code &ec, int sig) {
            if (ec) return;
            if (sig == SIGHUP) {
                spdlog::info("SIGHUP received and ignored");
                wait_signals();
                return;
            }
            if (++signals_seen == 1) {
                spdlog::info("signal {} received; cancelling intake and sessions", sig);
                begin_stop();
                wait_signals();
                return;
            }
            spdlog::warn("second signal {} received; exiting now", sig);
            process::ProcessService::instance().kill_all(SIGKILL);
            exit_code = 130;
            io.stop();
        });
    }

    void begin_stop() {
        stopping = true;
        intake_timer.cancel();
        for (auto &[key, timer] : retry_timers) timer->cancel();
        retry_timers.clear();
        for (auto &[key, run] : runs) cancel_run(*run, StageRun::Cancel::shutdown, "");
        // Hooks and prompt commands in flight belong to the stop too.
        process::ProcessService::instance().kill_all(SIGKILL);
        shutdown_timer.expires_after(std::chrono::seconds(options.shutdown_grace_sec));
        shutdown_timer.async_wait([this](const boost::system::error_code &ec) {
            if (ec) return;
            spdlog::error("stop did not finish within {} s; exiting with {} run(s) left", options.shutdown_grace_sec, runs.size());
            process::ProcessService::instance().kill_all(SIGKILL);
            exit_code = 1;
            io.stop();
        });
        maybe_exit();
    }

    void maybe_exit() {
        if (!(stopping || intake_done)) return;
        if (!runs.empty() || inflight > 0 || !active.empty()) return;
        shutdown_timer.cancel();
        io.stop();
    }

    // Creates the plugin instances, opens the control channel and starts listening for signals;
    // throws naming the plugin (or the channel) that could not start.
    void prepare() {
        if (prepared) return;
        base = base_context(cfg);
        create_plugins();
        try {
            control = std::make_unique<ControlServer>(
                io, control_socket_name(cfg.scoped_root()), [this](const ControlRequest &r, const Peer &peer, ControlServer::Reply reply) {
                    guard(r.id, "", [&] { on_control(r.command, r.id, r.value, peer, std::move(reply)); });
                });
        } catch (const std::exception &e) {
            throw std::runtime_error(std::string("cannot open the control channel (another vik-host for this workflow?): ") + e.what());
        }
        wait_signals();
        prepared = true;
    }

    int run() {
        prepare();
        spdlog::info("starting vik: workflow={} tracker={} stages={} max_issue_concurrency={}", cfg.workflow_path.string(),
                     cfg.tracker_kind, cfg.stages.size(), cfg.max_issue_concurrency);
        asio::post(io, [this] { guard("", "", [this] { start_intake(); }); });
        // The last line of defence: handlers are guarded one by one (with their issue); anything
        // escaping them anyway is logged and the loop goes on.
        for (;;) {
            try {
                io.run();
                break;
            } catch (const std::exception &e) {
                spdlog::error("scheduling invariant violated in the event loop: {}; the loop goes on", e.what());
            } catch (...) {
                spdlog::error("scheduling invariant violated in the event loop: unknown exception; the loop goes on");
            }
        }
        spdlog::info("vik-host stopped exit_code={}", exit_code);
        return exit_code;
    }

    ~Impl() {
        // Nothing may outlive the loop: sessions and hooks are killed, then workers joined.
        process::ProcessService::instance().kill_all(SIGKILL);
        control.reset();
        runs.clear();
        pool.stop();
        pool.join();
    }
};

Orchestrator::Orchestrator(const workflow::Config &config, const plugins::Registry &registry, OrchestratorOptions options)
    : impl_(std::make_unique<Impl>(config, registry, std::move(options))) {}

Orchestrator::~Orchestrator() = default;

void Orchestrator::prepare() { impl_->prepare(); }

int Orchestrator::run() { return impl_->run(); }

bool Orchestrator::has_stuck_work() const { return impl_->inflight > 0; }

} // namespace vik::orchestrator
