// The scheduler: the small owner of the run loop. It holds the claim table, the issues that hold
// a slot, the retry timers and the stop; it hands every other job to a part, each in its own file:
//   intake.hpp              tracker calls, observations, reconciliation decisions
//   stage_launcher.hpp      workspaces (through the Layout), hooks, prompt rendering and exec()
//   session_supervisor.hpp  running sessions, their records, timeouts and outcomes
//   blocking_runner.hpp     blocking calls on workers with a deadline on the loop
//   operator_control.hpp    operator and agent requests from the control channel
//   scheduler_surface.hpp   what operator surfaces (HTTP API, dashboard) see and ask
//   workspace_janitor.hpp   the workspace inventory and the retention of terminal workspaces
//   durable_state.hpp       claims and runs mirrored into the store, restart recovery
// Scheduling time comes from one SchedulerClock (scheduler_clock.hpp): the system clock in the
// host, a ManualClock in tests.
// Every loop handler runs under the FaultGuard: an exception blocks its issue (on_fault), never
// the loop.
#include "orchestrator/orchestrator.hpp"

#include "orchestrator/agent_choice.hpp"
#include "orchestrator/blocking_runner.hpp"
#include "orchestrator/budgets.hpp"
#include "orchestrator/candidates.hpp"
#include "orchestrator/claims.hpp"
#include "orchestrator/durable_state.hpp"
#include "orchestrator/fault_guard.hpp"
#include "orchestrator/gate_runner.hpp"
#include "orchestrator/intake.hpp"
#include "orchestrator/lease_keeper.hpp"
#include "orchestrator/operator_control.hpp"
#include "orchestrator/schedule_runner.hpp"
#include "orchestrator/scheduler_surface.hpp"
#include "orchestrator/session_supervisor.hpp"
#include "orchestrator/stage_launcher.hpp"
#include "orchestrator/stage_outcomes.hpp"
#include "orchestrator/tracker_factory.hpp"
#include "orchestrator/workflow_reload.hpp"
#include "orchestrator/workspace_janitor.hpp"
#include "util/ids_and_time.hpp"
#include "util/untrusted_text.hpp"
#include "workflow/plugin_checks.hpp"
#include "workspace/layout.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <map>
#include <optional>
#include <set>

namespace vik::orchestrator {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::string join(const std::vector<std::string> &v, const char *sep = ",") {
    std::string out;
    for (const auto &s : v)
        out += (out.empty() ? "" : sep) + s;
    return out;
}

} // namespace

// An issue with at least one stage launching or running: it holds a slot.
struct ActiveIssue {
    Issue issue;                      // as last seen
    fs::path workdir;                 // the checked workspace path, once set up
    bool ready = false;               // workspace set up
    std::vector<std::string> waiting; // stages to launch once ready
    std::set<std::string> running;    // stages launching, in a session, or finishing
};

struct Orchestrator::Impl {
    LiveConfig cfg; // the workflow new work uses; a reload adopts another (live_config.hpp)
    const plugins::Registry &registry;
    OrchestratorOptions options;
    process::ProcessService &processes;
    process::CommandRunner commands;

    asio::io_context io;
    std::shared_ptr<SchedulerClock> clock_owner = options.clock ? options.clock : make_system_clock();
    SchedulerClock &clock = *clock_owner;
    FaultGuard guard{
        [this](const std::string &id, const std::string &stage, const std::string &what) { on_fault(id, stage, what); }};
    BlockingRunner runner{io, clock, static_cast<size_t>(std::max(1, options.worker_threads)), [this] { maybe_exit(); }};
    GateRunner gates{io, clock, processes, guard};
    CallBudgets budgets = CallBudgets::from(cfg.get());
    workspace::Layout layout{cfg->issues_dir(), cfg->sessions_dir()};
    asio::signal_set signals{io, SIGINT, SIGTERM, SIGHUP};
    std::unique_ptr<SchedulerTimer> intake_timer = clock.make_timer(io);
    std::unique_ptr<SchedulerTimer> shutdown_timer = clock.make_timer(io);

    std::unique_ptr<Intake> intake;
    std::unique_ptr<StageLauncher> launcher;
    std::unique_ptr<SessionSupervisor> sessions;
    std::unique_ptr<OperatorControl> control;
    std::unique_ptr<WorkspaceJanitor> janitor;
    ChangeFeed feed;
    SchedulerStatus status;
    std::unique_ptr<SchedulerSurface> surface;
    std::unique_ptr<ScheduleRunner> schedules;
    std::vector<store::ScheduleRecord> schedules_fired; // as the store recovered them

    ClaimTable claims;
    DurableState durable{options.store};
    StageOutcomes outcomes{options.store};     // structured outcomes per issue and stage
    std::map<std::string, ActiveIssue> active; // by issue id
    struct PendingRetry {
        std::unique_ptr<SchedulerTimer> timer;
        SchedulerClock::time_point due;
    };
    std::map<PairKey, PendingRetry> retry_timers;
    std::map<PairKey, std::unique_ptr<SchedulerTimer>> approval_reminders; // human gates' notify_after_sec
    // Pairs from dispatch until their end, with the stage of the config generation they started
    // under (kept alive by LiveConfig).
    std::map<PairKey, const workflow::Stage *> launched;
    std::set<std::string> removal_pending, removing; // workspaces to clean
    std::set<PairKey> gating;                        // pairs whose completed run waits for its gate, until the pair's end
    // Pairs whose completed run an agent reviews (gate.agent): the run's end, until the verdict.
    struct Review {
        SessionEnd end;
        uint64_t serial = 0;    // this review's, so a late callback of an earlier one starts nothing
        bool cancelled = false; // an operator's cancel came while its prompt was prepared
    };
    std::map<PairKey, Review> reviewing;
    uint64_t review_serial = 0;
    std::set<PairKey> gates_cancelled; // gate commands an operator's cancel killed: their pair blocks
    // Several hosts (store/leases.hpp): the store's leases, their keeper, the pairs whose lease
    // was lost while work on them was under way (that work ends with nothing recorded), and
    // whether a dispatch waits for leases.
    store::Leases *leases = options.store ? options.store->leases() : nullptr;
    std::unique_ptr<LeaseKeeper> keeper;
    std::set<PairKey> lease_lost;
    bool acquiring = false;
    std::atomic<int64_t> shared_idle_sec{cfg->idle_sec}; // the pull period, for the shared pull's staleness (read on a worker)
    std::atomic<bool> pulling_directly{false};           // a follower pulls the tracker itself (logged once per spell)
    std::optional<FileStamp> workflow_stamp;             // the workflow file the current config was read from
    int64_t iterations = 0;
    bool pulling = false;     // a pull is in flight
    bool stopping = false;    // a signal asked us to stop
    bool intake_done = false; // max_iterations reached: drain and exit
    int signals_seen = 0;
    int exit_code = 0;
    bool prepared = false;

    Impl(const workflow::Config &c, const plugins::Registry &r, process::ProcessService &p, OrchestratorOptions o)
        : cfg(c), registry(r), options(std::move(o)), processes(p),
          commands(options.commands ? options.commands : process::command_runner(p)),
          claims(c.scheduling, [this] { return clock.wall_now(); }) {
        status.started_at = clock.wall_now();
        durable.observe(claims);
    }

    void publish(const char *kind, const std::string &id, const std::string &stage, boost::json::object data = {}) {
        if (!feed.empty()) feed.publish(Change{kind, id, stage, util::rfc3339_utc(clock.wall_now()), std::move(data)});
    }

    // A claim moved to retry_queued, blocked or awaiting approval (or went): listeners hear its new
    // view. A routed claim is not a block anyone must act on: the route announces itself (`routed`).
    void publish_claim(const PairKey &key) {
        if (feed.empty()) return;
        const Claim *c = claims.find(key);
        if (!c)
            publish("released", key.first, key.second);
        else if (c->state == ClaimState::retry_queued)
            publish("retry_queued", key.first, key.second, to_json(surface->retry_view(key, *c)));
        else if (c->state == ClaimState::blocked && c->routed_to.empty())
            // A human gate's wait is announced as itself: webhooks are told of it only after
            // notify_after_sec (`gate_waiting`), not as a block.
            publish(c->awaiting_approval ? "awaiting_approval" : "blocked", key.first, key.second,
                    to_json(surface->blocked_view(key, *c)));
    }

    bool terminal(const std::string &state) const { return intake->terminal(state); }

    bool gating_issue(const std::string &id) const {
        auto it = gating.lower_bound(PairKey{id, std::string()});
        return it != gating.end() && it->first == id;
    }
    // Whether nothing may start for the issue: a gate runs, a verdict is awaited, or a rejected
    // run is being moved back.
    bool held(const std::string &id) const {
        return gating_issue(id) || !claims.awaiting_approval(id).empty() || running_decided_stage(id);
    }
    // A stage whose run stands only once something checked it (a gate, an outcome): while it
    // runs, its agent may move the issue on (vik's agents do) without the run being cancelled or
    // the next stage starting.
    static bool decided_after_run(const workflow::Stage &s) {
        return s.gate.command || s.gate.agent || s.gate.human || s.outcome;
    }
    bool running_decided_stage(const std::string &id) const {
        auto a = active.find(id);
        if (a == active.end()) return false;
        return std::any_of(a->second.running.begin(), a->second.running.end(), [&](const std::string &stage) {
            const workflow::Stage *st = stage_of({id, stage});
            return st && decided_after_run(*st);
        });
    }

    // The stage of that name in the current config; nullptr when a reload removed it.
    const workflow::Stage *find_stage(const std::string &name) const { return cfg->stage(name); }

    // The stage a pair runs with: the one of the config it was dispatched under (a reload does not
    // change work under way), else the current one; nullptr when neither exists.
    const workflow::Stage *stage_of(const PairKey &key) const {
        auto it = launched.find(key);
        return it != launched.end() ? it->second : find_stage(key.second);
    }

    // ---- invariants --------------------------------------------------------------------------

    // A handler of `id` (and `stage`, when known) threw. Its running sessions are stopped and end
    // blocked; the stage whose handler failed is taken out of the issue's running set (nothing
    // else would end it); the issue's stages are blocked until its state changes or an operator
    // retries. The host goes on.
    void on_fault(const std::string &id, const std::string &stage, const std::string &what) noexcept {
        try {
            spdlog::error("scheduling invariant violated issue_id={} stage={}: {}{}", id.empty() ? "-" : id,
                          stage.empty() ? "-" : stage, what, id.empty() ? "" : "; the issue is blocked");
            if (id.empty()) return;
            std::string reason = "internal error: " + what;
            sessions->cancel_issue(id, CancelReason::fault, reason);
            gates.cancel(id);
            for (auto g = gating.lower_bound(PairKey{id, std::string()}); g != gating.end() && g->first == id;)
                g = gating.erase(g);
            auto a = active.find(id);
            std::optional<std::string> state;
            if (const Issue *known = intake->newest(id))
                state = known->state;
            else if (a != active.end())
                state = a->second.issue.state;
            if (!stage.empty() && sessions->finishing({id, stage})) sessions->forget({id, stage}); // nothing else will end it
            if (!stage.empty() && !sessions->holds({id, stage})) {
                launched.erase({id, stage});
                lease_lost.erase({id, stage});
                reviewing.erase({id, stage}); // a review being prepared does not start
                if (a != active.end()) {
                    a->second.running.erase(stage);
                    std::erase(a->second.waiting, stage);
                }
                claims.block({id, stage}, reason, state);
            }
            for (const auto &s : cfg->stages) {
                const Claim *c = claims.find({id, s.name});
                // A run awaiting a human keeps waiting: a block would let the next stage start on it.
                if (sessions->holds({id, s.name}) || (c && (c->state == ClaimState::running || c->awaiting_approval))) continue;
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

    // ---- intake and reconciliation -----------------------------------------------------------

    void start_intake() {
        if (stopping || intake_done || pulling) return;
        reload_if_edited();
        pulling = true;
        status.next_intake_at.reset();
        intake->pull(intake_interest(), [this](Observation o) { on_pulled(std::move(o)); });
    }

    // The issues of a pull the scheduler needs whole: those a stage takes or that are terminal
    // (their claims and workspaces are cleaned), and those the host holds something for.
    IssueInterest intake_interest() const {
        IssueInterest interest;
        for (const auto &s : cfg->stages)
            interest.states.insert(s.state);
        for (const auto &t : cfg->scheduling.terminal_states)
            interest.states.insert(t);
        for (const auto &[id, a] : active)
            interest.ids.insert(id);
        for (const auto &id : claims.issue_ids())
            interest.ids.insert(id);
        for (const auto &id : sessions->unfinished_issues())
            interest.ids.insert(id);
        interest.ids.insert(removing.begin(), removing.end());
        interest.ids.insert(removal_pending.begin(), removal_pending.end());
        return interest;
    }

    // An operator asked for intake now: the pull starts at once unless one is in flight.
    bool request_intake() {
        if (stopping || intake_done) return false;
        if (!pulling) {
            intake_timer->cancel();
            asio::post(io, [this] { guard("", "", [this] { start_intake(); }); });
        }
        return true;
    }

    void on_pulled(Observation o) {
        ++iterations;
        pulling = false;
        if (stopping) return;
        status.last_intake_at = clock.wall_now();
        ++status.intake_cycles;
        status.record_intake_duration(std::chrono::duration<double>(clock.now() - o.called.value_or(o.started)).count());
        if (!o.result) ++status.intake_failures;
        status.last_intake_error = o.result ? "" : o.result.error();
        // Whatever happens below, the next cycle is scheduled.
        guard("", "", [&] { process_pull(o); });
        if (cfg->max_iterations && iterations >= *cfg->max_iterations) {
            spdlog::info("max_iterations reached iterations={}; draining running stages", iterations);
            intake_done = true;
            if (schedules) schedules->stop(); // a firing now would move its issue with nothing to run it
            if (keeper) keeper->stop_adopting();
            maybe_exit();
            return;
        }
        auto wait = intake->next_wait(o.result.has_value());
        status.next_intake_at = clock.wall_now() + wait;
        intake_timer->start(wait, [this] { guard("", "", [this] { start_intake(); }); });
        publish("intake", "", "",
                boost::json::object{
                    {"count", o.result ? o.result->pulled : 0},
                    {"error", o.result ? boost::json::value(nullptr) : boost::json::value(o.result.error())},
                    {"duration_ms",
                     std::chrono::duration_cast<std::chrono::milliseconds>(clock.now() - o.called.value_or(o.started)).count()}});
    }

    void process_pull(const Observation &o) {
        if (!o.result) {
            spdlog::error("intake cycle failed: {} (tracker {})", o.result.error(), intake->tracker_id());
            return;
        }
        for (const auto &w : o.result->warnings)
            spdlog::warn("{}", w);
        spdlog::info("issues pulled count={} iteration={}{}", o.result->pulled, iterations,
                     o.result->source.empty() ? "" : " source=" + o.result->source);
        // What the pull says, except where the host learned something newer while it ran.
        std::vector<Issue> issues = intake->observe_all(o.result->issues, o.started);
        reconcile(issues, {}, o.started);
        for (const auto &i : issues)
            guard(i.id, "", [&] {
                if (size_t n = claims.clear_blocks_on_state_change(i.id, i.state))
                    spdlog::info("block cleared by a state change issue_id={} state={} stages={}", i.id, i.state, n);
                if (terminal(i.state)) clean_terminal(i);
            });
        dispatch(issues, o.result->blocker_states);
        refresh_missing(issues);
        if (!stopping && !intake_done)
            janitor->after_pull(
                issues,
                [this](const std::string &id) { return active.count(id) || removing.count(id) || removal_pending.count(id); },
                [this](const Issue &i) { clean_terminal(i); }, [this] { return !stopping; });
        intake->prune(
            issues, o.started,
            [this](const std::string &id) {
                return active.count(id) || claims.has_issue(id) || removal_pending.count(id) || removing.count(id);
            },
            [this](const std::string &id) { return active.count(id) > 0; });
    }

    // Intake decides which running sessions stop; the issues that hold a slot see the news.
    void reconcile(const std::vector<Issue> &fresh, const std::set<std::string> &asked, Clock::time_point started) {
        std::vector<PairKey> live = sessions->live();
        for (const auto &i : fresh)
            if (auto a = active.find(i.id); a != active.end())
                if (std::any_of(live.begin(), live.end(), [&](const PairKey &k) { return k.first == i.id; })) a->second.issue = i;
        auto stage_state = [this](const PairKey &key) -> const std::string * {
            const workflow::Stage *s = stage_of(key);
            return s ? &s->state : nullptr;
        };
        std::set<std::string> visible;
        for (const auto &i : fresh)
            visible.insert(i.id);
        for (const Stop &s : intake->reconcile(fresh, asked, started, live, stage_state))
            guard(s.key.first, s.key.second, [&] {
                // An agent moving its issue on while a gated stage runs is the usual way to finish:
                // the run goes on, and its gate (or outcome) decides whether the move stands.
                const workflow::Stage *st = stage_of(s.key);
                if (s.why == CancelReason::left && visible.count(s.key.first) && st && decided_after_run(*st)) {
                    spdlog::debug("session keeps running issue_id={} stage={}: {}; its gate decides", s.key.first, s.key.second,
                                  s.detail);
                    return;
                }
                sessions->cancel(s.key, s.why, s.detail);
            });
    }

    // Running issues the pull did not show are refreshed by id; a failed refresh stops nothing.
    void refresh_missing(const std::vector<Issue> &pulled) {
        std::set<std::string> missing = sessions->unfinished_issues();
        for (const auto &i : pulled)
            missing.erase(i.id);
        if (missing.empty()) return;
        intake->fetch(missing, guard.wrap("", "", [this, missing](Observation o) mutable {
            if (stopping) return;
            if (!o.result) {
                spdlog::warn("reconcile refresh failed; running work untouched: {}", o.result.error());
                return;
            }
            for (const auto &w : o.result->warnings)
                spdlog::warn("{}", w);
            // An issue the tracker returned malformed is not gone: its run goes on.
            for (const auto &bad : o.result->skipped)
                missing.erase(bad.id);
            reconcile(intake->observe_all(o.result->issues, o.started), missing, o.started);
        }));
    }

    // ---- dispatch --------------------------------------------------------------------------

    // Several hosts: a dispatch first finds the pairs it would start that need a lease (a pair
    // this host has a claim on holds its lease already), takes their leases in one call, then
    // dispatches again with what it got.
    struct LeasePlan {
        std::vector<store::Leases::LeaseRequest> wanted;
        std::set<std::string> issues;   // issues waiting for leases: they count against the slots
        const std::set<PairKey> *taken; // pairs whose lease another host had this intake: skipped
    };
    // Rounds of lease taking per intake: each skips what the ones before found taken elsewhere,
    // so a host whose peers hold the top of the list reaches further down it.
    static constexpr int kLeaseRounds = 8;

    // Whether a new issue in `state` may take a slot now (`planned`: issues a lease plan already
    // gave a slot to).
    bool has_room(const std::string &id, const std::string &state, const LeasePlan *plan = nullptr) const {
        if (active.count(id)) return true; // it holds a slot already
        size_t planned = plan ? plan->issues.size() : 0;
        if (active.size() + planned >= static_cast<size_t>(cfg->max_issue_concurrency)) return false;
        std::vector<std::string> running_states;
        for (const auto &[aid, a] : active)
            running_states.push_back(a.issue.state);
        return state_has_room(cfg->scheduling, state, running_states);
    }

    // `other_states`: issues the pull held but did not build, named as blockers.
    void dispatch(const std::vector<Issue> &issues, const std::map<std::string, std::string> &other_states = {}) {
        status.waiting.clear();
        std::map<std::string, std::string> state_by_id = other_states;
        for (const auto &i : issues)
            state_by_id[i.id] = i.state;
        if (keeper) return dispatch_with_leases(issues, std::move(state_by_id));
        for (const Issue *issue : order_candidates(issues))
            guard(issue->id, "", [&] { dispatch_one(*issue, state_by_id); });
    }

    void dispatch_with_leases(const std::vector<Issue> &issues, std::map<std::string, std::string> state_by_id,
                              std::set<PairKey> taken_elsewhere = {}, int round = 1) {
        if (acquiring) return; // the dispatch waiting for its leases sees this pull's news soon enough
        LeasePlan plan{{}, {}, &taken_elsewhere};
        for (const Issue *issue : order_candidates(issues))
            guard(issue->id, "", [&] { dispatch_one(*issue, state_by_id, &plan); });
        if (plan.wanted.empty()) return;
        acquiring = true;
        keeper->acquire(
            plan.wanted, cfg->scheduling.max_concurrent_by_state,
            guard.wrap(
                "", "",
                [this, issues, state_by_id, wanted = plan.wanted, taken_elsewhere = std::move(taken_elsewhere),
                 round](std::set<PairKey> got) mutable {
                    acquiring = false; // set again below while the leased issues are looked up
                    if (got.empty() || stopping || intake_done)
                        return leases_taken(issues, std::move(state_by_id), std::move(wanted), std::move(got),
                                            std::move(taken_elsewhere), round);
                    // The pull may be older than another host's last move of these issues (it finished
                    // one and let its lease go just now): they are looked up again before they start.
                    std::set<std::string> ids;
                    for (const auto &key : got)
                        ids.insert(key.first);
                    acquiring = true;
                    intake->fetch(
                        ids,
                        guard.wrap(
                            "", "", [this, issues, state_by_id, wanted, got, taken_elsewhere, round, ids](Observation o) mutable {
                                acquiring = false; // first: a handler that threw must not stop every later dispatch
                                if (!o.result) {
                                    spdlog::warn("leased issues could not be looked up again; they wait for the next intake: {}",
                                                 o.result.error());
                                    keeper->release_unused(std::vector<PairKey>(got.begin(), got.end()));
                                    return;
                                }
                                std::map<std::string, Issue> now;
                                for (const auto &i : intake->observe_all(o.result->issues, o.started))
                                    now[i.id] = i;
                                std::vector<Issue> fresh; // a leased issue the tracker no longer has is left out: not started
                                for (const auto &i : issues)
                                    if (!ids.count(i.id))
                                        fresh.push_back(i);
                                    else if (auto it = now.find(i.id); it != now.end())
                                        fresh.push_back(it->second);
                                leases_taken(fresh, std::move(state_by_id), std::move(wanted), std::move(got),
                                             std::move(taken_elsewhere), round);
                            }));
                }));
    }

    // The second pass of a dispatch with leases: the pairs leased start (those still matching),
    // the leases not used go back, and another round looks further down the list when some
    // leases were taken elsewhere.
    void leases_taken(const std::vector<Issue> &issues, std::map<std::string, std::string> state_by_id,
                      std::vector<store::Leases::LeaseRequest> wanted, std::set<PairKey> got, std::set<PairKey> taken_elsewhere,
                      int round) {
        bool going = !stopping && !intake_done;
        if (!got.empty() && going) {
            status.waiting.clear();
            for (const auto &i : issues)
                state_by_id[i.id] = i.state;
            for (const Issue *issue : order_candidates(issues))
                guard(issue->id, "", [&] { dispatch_one(*issue, state_by_id, nullptr, &got); });
        }
        std::vector<PairKey> unused;
        for (const auto &key : got)
            if (!claims.claimed(key)) unused.push_back(key);
        keeper->release_unused(std::move(unused));
        size_t refused = 0;
        for (const auto &w : wanted)
            if (!got.count(w.pair) && taken_elsewhere.insert(w.pair).second) ++refused;
        if (going && refused > 0 && round < kLeaseRounds)
            dispatch_with_leases(issues, std::move(state_by_id), std::move(taken_elsewhere), round + 1);
    }

    // `plan` (several hosts, first pass): pairs that need a lease are added to it instead of
    // starting. `leased` (second pass): the leases taken; only pairs with one (or a claim) start.
    void dispatch_one(const Issue &issue, const std::map<std::string, std::string> &state_by_id, LeasePlan *plan = nullptr,
                      const std::set<PairKey> *leased = nullptr) {
        if (terminal(issue.state) || removing.count(issue.id) || removal_pending.count(issue.id)) return;
        std::vector<std::string> matching;
        for (const auto &s : cfg->stages)
            if (s.state == issue.state && claims.dispatchable({issue.id, s.name})) matching.push_back(s.name);
        if (plan && std::any_of(matching.begin(), matching.end(), [&](const std::string &s) {
                return !claims.claimed({issue.id, s}) && plan->taken->count({issue.id, s});
            }))
            return; // another host works on the issue
        if (matching.empty()) return;
        if (gating_issue(issue.id) ||
            running_decided_stage(issue.id)) { // the run that moved it on stands only if its gate passes
            status.waiting.push_back({issue.id, issue.title, issue.state, "waits for a stage's gate"});
            return;
        }
        if (auto held = claims.awaiting_approval(issue.id); !held.empty()) { // likewise, until a human's verdict
            status.waiting.push_back({issue.id, issue.title, issue.state,
                                      "waits for approval of stage " + held.front().second + " (vik-host gate approve|reject)"});
            return;
        }
        if (waits_on_blocker(issue, state_by_id, cfg->scheduling.terminal_states)) {
            spdlog::debug("issue waits for its blockers issue_id={}", issue.id);
            status.waiting.push_back({issue.id, issue.title, issue.state, "waits for its blockers"});
            return;
        }
        if (!has_room(issue.id, issue.state, plan)) {
            spdlog::debug("no free slot; issue waits issue_id={} running_issues={}", issue.id, active.size());
            status.waiting.push_back(
                {issue.id, issue.title, issue.state,
                 active.size() >= static_cast<size_t>(cfg->max_issue_concurrency)
                     ? "no free slot (loop.max_issue_concurrency = " + std::to_string(cfg->max_issue_concurrency) + ")"
                     : "the state's limit is reached (scheduling.max_concurrent_by_state." + issue.state + ")"});
            return;
        }
        if (keeper) {
            // A pair this host has a claim on holds its lease; the others need one first.
            std::vector<std::string> ready;
            for (const auto &s : matching)
                if ((claims.claimed({issue.id, s}) || (leased && leased->count({issue.id, s}))) && keeper->holds({issue.id, s}))
                    ready.push_back(s);
                else if (plan)
                    plan->wanted.push_back({{issue.id, s}, issue.state});
            if (plan && ready.size() < matching.size()) {
                plan->issues.insert(issue.id); // the issue's stages start together, once leased
                return;
            }
            if (ready.empty()) return; // another host has them
            matching = std::move(ready);
        }
        // Claim before any asynchronous work, so a repeated intake cannot launch twice.
        for (const auto &s : matching) {
            lease_lost.erase({issue.id, s}); // a lease taken again: whatever was lost before is over
            claims.start({issue.id, s}, issue.state);
        }
        spdlog::info("issue ready; launching stages issue_id={} state={} stages={}", issue.id, issue.state, join(matching));
        for (const auto &s : matching)
            guard(issue.id, s, [&] { begin_stage(issue, s); });
    }

    // The claim is running: set the workspace up if needed, then launch.
    void begin_stage(const Issue &issue, const std::string &stage) {
        bool fresh = !active.count(issue.id);
        const workflow::Stage *current = find_stage(stage);
        if (!current) throw std::logic_error("dispatch of stage '" + stage + "', which the workflow does not have");
        launched[{issue.id, stage}] = current;
        ActiveIssue &a = active[issue.id];
        a.issue = issue;
        a.running.insert(stage);
        if (fresh) {
            a.waiting.push_back(stage);
            setup_issue(issue.id);
        } else if (!a.ready) {
            a.waiting.push_back(stage);
        } else {
            launch_stage(issue.id, stage);
        }
    }

    void setup_issue(const std::string &id) {
        launcher->setup_workspace(active.at(id).issue, guard.wrap(id, "", [this, id](StepResult r) {
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
            it->second.workdir = r.value; // the path the containment check returned
            for (const auto &s : waiting) {
                if (removal_pending.count(id)) {
                    // Closed while after_create ran: the stage never starts; the cleanup
                    // deferred until now runs once the issue's last stage has ended.
                    spdlog::info("stage not launched issue_id={} stage={}: the issue reached a terminal state during setup", id,
                                 s);
                    guard(id, s, [&] { stage_ended(id, s, Outcome::dropped, ""); });
                } else {
                    guard(id, s, [&] { launch_stage(id, s); });
                }
            }
        }));
    }

    // The conversation a run of the pair continues, or "" for a fresh one: the profile resumes
    // (agents.X.resume on a runtime that can), the claim holds a conversation of that profile, the
    // run is not a claim's first, and the conversation has turns left (agents.X.max_turns).
    ConversationToResume conversation_to_resume(const Issue &issue, const workflow::Stage &stage, const Claim *claim) const {
        const std::string &stage_name = stage.name;
        if (!claim || claim->conversation_id.empty() || claim->retry_kind == "first") return {};
        const std::string &agent = agent_for(stage, issue);
        if (!sessions->resumes(agent) || claim->conversation_agent != agent) return {};
        const workflow::AgentProfile *profile = cfg->agent(agent);
        if (profile && claim->conversation_turns >= profile->max_turns) {
            spdlog::info("conversation ended issue_id={} stage={} conversation={}: it served {} run(s) "
                         "(agents.{}.max_turns); a fresh one starts",
                         issue.id, stage_name, claim->conversation_id, claim->conversation_turns, agent);
            return {};
        }
        return {agent, claim->conversation_id};
    }

    // The prompt's `failure`: the failure that routed the issue to this stage (on_fail), or empty
    // values when none did.
    boost::json::object failure_context(const std::string &id, const std::string &stage_name) const {
        boost::json::object f{{"stage", ""}, {"reason", ""}, {"attempts", 0}, {"routes", 0}};
        if (auto from = claims.routed_to(id, stage_name)) {
            f["stage"] = from->first.second;
            f["reason"] = from->second.route_reason;
            f["attempts"] = from->second.failures;
            f["routes"] = from->second.routes;
        }
        return f;
    }

    // The prompt may adapt to why this run happens: attempt, retry_kind, last_error, an
    // operator's message; a resumed conversation gets the stage's resume_prompt instead.
    boost::json::object run_info(const std::string &id, const std::string &stage_name, bool resumed) const {
        const Claim *claim = claims.find({id, stage_name});
        return boost::json::object{{"attempt", claim ? claim->runs : 1},
                                   {"retry_kind", claim ? claim->retry_kind : "first"},
                                   {"last_error", claim ? claim->last_error : ""},
                                   {"operator_message", claim ? claim->operator_message : ""},
                                   {"gate_feedback", claim ? claim->gate_feedback : ""},
                                   {"resumed", resumed},
                                   {"failure", failure_context(id, stage_name)},
                                   {"outcomes", outcomes.of(id)}};
    }

    void launch_stage(const std::string &id, const std::string &stage_name) {
        const ActiveIssue &a = active.at(id);
        const Claim *claim = claims.find({id, stage_name});
        const workflow::Stage *stage = stage_of({id, stage_name});
        if (!stage) throw std::logic_error("launch of stage '" + stage_name + "', which the workflow does not have");
        ConversationToResume resume = conversation_to_resume(a.issue, *stage, claim);
        launcher->prepare_stage(
            a.issue, a.workdir, *stage, run_info(id, stage_name, !resume.id.empty()),
            guard.wrap(id, stage_name, [this, id, stage_name, stage, resume](StepResult r) {
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
                if (lease_lost.count({id, stage_name})) {
                    spdlog::info("stage not launched issue_id={} stage={}: this host lost its lease", id, stage_name);
                    stage_ended(id, stage_name, Outcome::dropped, "");
                    return;
                }
                const ActiveIssue &a = active.at(id);
                // A previous run's outcome file must not count for this one.
                if (stage->outcome)
                    if (auto cleared = clear_outcome(a.workdir, *stage->outcome); !cleared)
                        return stage_ended(id, stage_name, Outcome::failed, "outcome: " + cleared.error());
                const Claim *c = claims.find({id, stage_name});
                sessions->start(a.issue, a.workdir, *stage, std::move(r.value), c ? c->runs : 1, resume);
            }));
    }

    // A session ended: after_run for one that completed or failed, then the claim moves on.
    void session_ended(const PairKey &key, SessionEnd end) {
        const auto &[id, stage] = key;
        if (end.outcome == Outcome::dropped_terminal) removal_pending.insert(id);
        // The lease went while it ran: nothing of the run is checked, hooked or decided here.
        if (lease_lost.count(key)) return stage_ended(id, stage, Outcome::dropped, "this host lost the pair's lease", &end);
        if (end.review) return review_ended(key, std::move(end));
        if (!end.after_run) return stage_ended(id, stage, end.outcome, end.reason, &end);
        auto a = active.find(id);
        Issue issue;
        issue.id = id;
        if (a != active.end())
            issue = a->second.issue;
        else if (const Issue *known = intake->newest(id))
            issue = *known;
        fs::path workdir;
        if (a != active.end())
            workdir = a->second.workdir;
        else if (auto w = layout.workspace(id))
            workdir = *w;
        const workflow::Stage *st = stage_of(key);
        if (!st) return stage_ended(id, stage, end.outcome, end.reason, &end);
        launcher->after_run(issue, workdir, *st, guard.wrap(id, stage, [this, id, stage, end, workdir](StepResult r) {
            if (!r.ok) spdlog::error("after_run failed issue_id={} stage={}: {}", id, stage, r.error);
            check_outcome(id, stage, end, workdir);
        }));
    }

    // A completed run of a stage with an outcome stands only with a valid outcome file whose
    // succeed_if holds (stage_outcomes.hpp); the outcome is kept for later prompts and gates. A
    // missing, invalid or unsuccessful outcome is the run's failure, handled as a failed gate is
    // (the issue moved back from where the agent put it, then retried, routed or blocked).
    void check_outcome(const std::string &id, const std::string &stage, const SessionEnd &end, const fs::path &workdir) {
        const workflow::Stage *st = stage_of({id, stage});
        if (end.outcome != Outcome::completed || !st || !st->outcome || removal_pending.count(id))
            return check_gate(id, stage, end);
        gating.insert({id, stage}); // held until the run's end is decided: it may have moved the issue on
        auto read =
            workdir.empty() ? std::unexpected(std::string("the workspace is not known")) : read_outcome(workdir, *st->outcome);
        if (!read) {
            spdlog::warn("outcome invalid issue_id={} stage={}: {}", id, stage, read.error());
            return gate_failed(id, stage, *st, "outcome: " + read.error(), end);
        }
        outcomes.record(id, stage, *read, clock.wall_now());
        auto ok = outcome_succeeded(*st->outcome, stage, *read);
        if (!ok || !*ok) {
            std::string shown = boost::json::serialize(*read);
            if (shown.size() > 2048) shown = shown.substr(0, 2048) + "..."; // bounded as a gate's output is
            std::string why =
                !ok ? "outcome: " + ok.error() : "outcome: succeed_if `" + *st->outcome->succeed_if + "` is false for " + shown;
            spdlog::warn("outcome failed issue_id={} stage={}: {}", id, stage, why);
            return gate_failed(id, stage, *st, why, end);
        }
        spdlog::info("outcome recorded issue_id={} stage={}", id, stage);
        check_gate(id, stage, end);
    }

    // A completed run of a stage with a gate stands only if the gate's command passes
    // (gate_runner.hpp). A failed gate is the run's failure, with the command's last lines as
    // its reason (retried, routed by on_fail or blocked as any failure); an issue the agent had
    // moved on goes back to the stage's state first, so the stage can run again.
    void check_gate(const std::string &id, const std::string &stage, SessionEnd end) {
        const workflow::Stage *st = stage_of({id, stage});
        auto a = active.find(id);
        if (end.outcome != Outcome::completed || !st || (!st->gate.command && !st->gate.agent && !st->gate.human) || stopping ||
            removal_pending.count(id) || a == active.end())
            return stage_ended(id, stage, end.outcome, end.reason, &end);
        if (!st->gate.command) return review_or_approve(id, stage, *st, end);
        Issue issue = a->second.issue;
        if (const Issue *known = intake->newest(id)) issue = *known;
        StageLauncher::GateCommand cmd;
        try {
            cmd = launcher->gate_command(issue, a->second.workdir, *st, outcomes.of(id));
        } catch (const std::exception &e) {
            return stage_ended(id, stage, Outcome::failed, std::string("gate command could not be rendered: ") + e.what(), &end);
        }
        gating.insert({id, stage});
        spdlog::info("gate started issue_id={} stage={}", id, stage);
        auto limit = std::chrono::milliseconds(seconds_to_ms(st->gate.timeout_sec));
        gates.run({id, stage}, cmd.script, a->second.workdir, std::move(cmd.env), limit,
                  guard.wrap(id, stage, [this, id, stage, end, st](GateResult r) {
                      // A stop or a terminal issue killed it: the pair simply ends.
                      if (stopping || removal_pending.count(id)) return stage_ended(id, stage, end.outcome, end.reason, &end);
                      // An operator's cancel: blocked, as a cancelled run is.
                      if (gates_cancelled.count({id, stage}))
                          return stage_ended(id, stage, Outcome::blocked_by_operator, std::string(), &end);
                      if (r.passed) {
                          spdlog::info("gate passed issue_id={} stage={}", id, stage);
                          return review_or_approve(id, stage, *st, end);
                      }
                      std::string why = "gate failed: " + r.reason;
                      spdlog::warn("gate failed issue_id={} stage={}: {}", id, stage, r.reason);
                      gate_failed(id, stage, *st, std::move(why), end);
                  }));
    }

    // After the gate's command (if any) passed: an agent's review, then a human's verdict; with
    // neither, the run stands.
    void review_or_approve(const std::string &id, const std::string &stage, const workflow::Stage &st, const SessionEnd &end) {
        if (st.gate.agent) return start_review(id, stage, st, end);
        if (st.gate.human) return stage_ended(id, stage, Outcome::awaiting_approval, std::string(), &end);
        stage_ended(id, stage, Outcome::completed, end.reason, &end);
    }

    // An agent gate: a session of the reviewer's profile in the workspace, in the pair's place
    // (the stage's run is over, so the pair still has one session at a time), told the gate's
    // prompt. Its verdict file decides (review_ended); the issue stays held meanwhile.
    void start_review(const std::string &id, const std::string &stage, const workflow::Stage &st, const SessionEnd &end) {
        PairKey key{id, stage};
        auto a = active.find(id);
        if (stopping || removal_pending.count(id) || a == active.end())
            return stage_ended(id, stage, end.outcome, end.reason, &end);
        gating.insert(key);
        sessions->forget(key); // the stage's run is done with; the review takes its place
        uint64_t serial = ++review_serial;
        reviewing[key] = Review{end, serial, false};
        if (auto cleared = clear_outcome(a->second.workdir, verdict_spec(st)); !cleared) // a stale verdict must not count
            return review_ended(key, review_end(Outcome::failed, "verdict_file: " + cleared.error()));
        Issue issue = a->second.issue;
        if (const Issue *known = intake->newest(id)) issue = *known;
        spdlog::info("review started issue_id={} stage={} agent={}", id, stage, *st.gate.agent);
        fs::path workdir = a->second.workdir;
        launcher->prepare_review(issue, workdir, st, run_info(id, stage, false),
                                 guard.wrap(id, stage, [this, key, issue, workdir, &st, serial](StepResult r) {
                                     auto it = reviewing.find(key);
                                     if (it == reviewing.end() || it->second.serial != serial) return; // ended meanwhile
                                     if (it->second.cancelled)
                                         return review_ended(key, review_end(Outcome::blocked_by_operator, ""));
                                     if (!r.ok) return review_ended(key, review_end(Outcome::failed, r.error));
                                     if (stopping || removal_pending.count(key.first))
                                         return review_ended(key, review_end(Outcome::dropped, ""));
                                     const Claim *c = claims.find(key);
                                     sessions->start(issue, workdir, st, std::move(r.value), c ? c->runs : 1, {}, *st.gate.agent);
                                 }));
    }

    // An operator's cancel reaches what checks a completed run outside a session: a running gate
    // command (killed; the pair blocks) and a review whose session is not started yet (its prompt
    // is being prepared: it ends as cancelled once the prompt is there).
    size_t cancel_checks(const std::string &id) {
        size_t n = 0;
        for (const auto &key : gates.cancel(id)) {
            gates_cancelled.insert(key);
            ++n;
        }
        for (auto it = reviewing.lower_bound(PairKey{id, std::string()}); it != reviewing.end() && it->first.first == id; ++it)
            if (!sessions->holds(it->first) && !it->second.cancelled) {
                it->second.cancelled = true;
                ++n;
            }
        return n;
    }

    static SessionEnd review_end(Outcome outcome, std::string reason) {
        SessionEnd e{outcome, std::move(reason), false};
        e.review = true;
        return e;
    }
    static workflow::OutcomeSpec verdict_spec(const workflow::Stage &st) {
        return workflow::OutcomeSpec{st.gate.verdict_file, {{"approved", "boolean"}}, std::nullopt};
    }

    // The reviewer's session ended. An approval lets the run stand (or go on to a human); a
    // rejection, an invalid or missing verdict, or a review that did not complete is the run's
    // failure, handled as a failed gate (the issue moved back, then retried, routed or blocked
    // under the retry policy, which bounds the loop); a rejection's feedback reaches the next
    // attempt's prompt as gate_feedback.
    void review_ended(const PairKey &key, SessionEnd review) {
        const auto &[id, stage] = key;
        auto it = reviewing.find(key);
        if (it == reviewing.end()) { // the pair ended meanwhile (a fault): only the session's listing goes
            spdlog::info("review ended after its stage issue_id={} stage={}", id, stage);
            return sessions->forget(key);
        }
        SessionEnd end = std::move(it->second.end);
        reviewing.erase(it);
        const workflow::Stage *st = stage_of(key);
        auto a = active.find(id);
        // A stop or a terminal issue ended it: the pair simply ends. An operator's cancel or a
        // fault blocks the pair as it would the stage's run.
        if (stopping || removal_pending.count(id) || !st || a == active.end())
            return stage_ended(id, stage, end.outcome, end.reason, &end);
        if (review.outcome == Outcome::blocked_by_operator || review.outcome == Outcome::blocked_by_fault)
            return stage_ended(id, stage, review.outcome, review.reason, &end);
        if (!cfg->agent(*st->gate.agent)) // a reload took the reviewer away: a human decides instead
            return stage_ended(id, stage, Outcome::awaiting_approval,
                               "its review could not run: the workflow no longer has agent profile '" + *st->gate.agent + "'",
                               &end);
        if (review.outcome != Outcome::completed) {
            std::string why = "gate review by " + *st->gate.agent + " did not complete: " +
                              (review.reason.empty() ? std::string("its session ended without a result") : review.reason);
            spdlog::warn("review failed issue_id={} stage={}: {}", id, stage, why);
            // The retry waits for a rate-limited reviewer's reset as for a rate-limited author.
            end.not_before_sec = std::max(end.not_before_sec, review.not_before_sec);
            return gate_failed(id, stage, *st, why, end);
        }
        auto verdict = read_outcome(a->second.workdir, verdict_spec(*st));
        if (!verdict) {
            std::string why = "gate review by " + *st->gate.agent + ": no valid verdict_file: " + verdict.error();
            spdlog::warn("review failed issue_id={} stage={}: {}", id, stage, why);
            return gate_failed(id, stage, *st, why, end);
        }
        std::string feedback;
        if (const auto *f = verdict->if_contains("feedback"); f && f->is_string()) feedback = std::string(f->get_string());
        if (feedback.size() > GateRunner::kTailBytes) // bounded as a gate's output is, cut on a character
            feedback = util::to_valid_utf8(std::string_view(feedback).substr(0, GateRunner::kTailBytes)) + "...";
        if (verdict->at("approved").as_bool()) {
            spdlog::info("review approved issue_id={} stage={} agent={}", id, stage, *st->gate.agent);
            if (st->gate.human) return stage_ended(id, stage, Outcome::awaiting_approval, std::string(), &end);
            return stage_ended(id, stage, Outcome::completed, end.reason, &end);
        }
        spdlog::warn("review rejected issue_id={} stage={} agent={}: {}", id, stage, *st->gate.agent,
                     util::escape_for_terminal(feedback));
        end.gate_feedback = feedback;
        gate_failed(id, stage, *st,
                    "gate rejected by reviewer " + *st->gate.agent + (feedback.empty() ? std::string() : ": " + feedback), end);
    }

    // Where did the agent leave the issue? (It may have moved it through the tracker itself.) An
    // issue moved on goes back to the stage's state, then the failure takes its course.
    void gate_failed(const std::string &id, const std::string &stage, const workflow::Stage &st, std::string why,
                     const SessionEnd &end) {
        intake->fetch({id}, guard.wrap(id, stage, [this, id, stage, &st, why, end](Observation o) {
            if (stopping || removal_pending.count(id) || !find_stage(stage))
                return stage_ended(id, stage, Outcome::failed, why, &end);
            // Not knowing where the agent left the issue, a retry could be dropped as "moved on"
            // and the failed work go ahead: a human decides instead (approve: the run stands
            // anyway; reject: the stage runs again), and the issue is held meanwhile.
            if (!o.result)
                return stage_ended(id, stage, Outcome::awaiting_approval,
                                   why + "; the issue could not be looked up to move it back: " + o.result.error(), &end);
            std::optional<Issue> now = intake->refreshed(id, *o.result, o.started);
            if (!now || now->state == st.state || terminal(now->state)) return stage_ended(id, stage, Outcome::failed, why, &end);
            intake->write("set-state", id, st.state,
                          guard.wrap(id, stage,
                                     [this, id, stage, &st, why, end](StepResult w) {
                                         if (!w.ok)
                                             return stage_ended(id, stage, Outcome::awaiting_approval,
                                                                why + "; the issue could not be moved back to '" + st.state +
                                                                    "': " + w.error,
                                                                &end);
                                         intake->learn_state(id, st.state, intake->now());
                                         spdlog::info("issue moved back issue_id={} state={}: its gate failed", id, st.state);
                                         stage_ended(id, stage, Outcome::failed, why, &end);
                                     }),
                          stage);
        }));
    }

    // ---- outcomes: every claim transition after a run goes through here -------------------------

    // Total: a stage may end on a claim that is gone (released by an operator or a cleanup
    // meanwhile); it is then simply over.
    // `end`: what the session told, when the stage got as far as one.
    void stage_ended(const std::string &id, const std::string &stage, Outcome outcome, const std::string &reason,
                     const SessionEnd *end = nullptr) {
        PairKey key{id, stage};
        sessions->forget(key);
        reviewing.erase(key);
        gates_cancelled.erase(key);
        bool undecided = gating.erase(key) > 0; // the issue was held until its gated pair's end is decided
        if (end) claims.note_conversation(key, end->conversation);
        const workflow::Stage *st = stage_of(key); // its end is judged by the config it ran under
        launched.erase(key);
        fs::path workdir;
        // The issue's bookkeeping first, so that nothing below can leave it holding a slot.
        if (auto a = active.find(id); a != active.end()) {
            workdir = a->second.workdir;
            a->second.running.erase(stage);
            std::erase(a->second.waiting, stage);
            if (a->second.running.empty()) active.erase(a);
        }
        if (lease_lost.erase(key)) {
            // Another host has the pair now (or will, once the lease expired): nothing this host
            // would decide about the run stands, and the store refuses its writes anyway.
            spdlog::warn("stage ended after this host lost its lease issue_id={} stage={}: nothing of the run is kept here", id,
                         stage);
            claims.release(key);
        } else if (stopping && undecided && st && !removal_pending.count(id) && find_stage(stage)) {
            // A stop while a completed run was being checked (its outcome, gate command or review):
            // the claim stays as it was (running, in the store too), so the next start treats the
            // run as interrupted and moves the issue back before it runs again; released, the
            // agent's unchecked move to the next state would stand.
            spdlog::info("stage left undecided issue_id={} stage={}: vik-host is stopping; it runs again after the restart", id,
                         stage);
        } else if (stopping || removal_pending.count(id) || !st || !find_stage(stage)) {
            // Stopping, the issue is terminal, or a reload removed the stage: nothing follows,
            // whatever the outcome.
            claims.release(key);
        } else {
            std::expected<Decision, std::string> d = Decision{};
            switch (outcome) {
            case Outcome::completed: {
                const Issue *known = intake->newest(id);
                d = claims.completed(key, known && known->state == st->state);
                break;
            }
            case Outcome::failed: {
                // on_fail answers the agent's failure at this stage: a failed setup, before_run
                // or prompt is retried, and an issue the agent moved on is not moved back.
                const Issue *known = intake->newest(id);
                bool agent_failed_here = end && end->after_run && known && known->state == st->state;
                d = claims.failed(key, reason, end ? end->not_before_sec : 0,
                                  agent_failed_here ? st->on_fail : workflow::FailurePolicy{}, end ? end->gate_feedback : "");
                break;
            }
            case Outcome::input_required:
                // Parked even when the agent completed its turn: if it moved the issue on anyway,
                // the next intake sees the state change and clears the park, as any block.
                d = claims.parked(key, end ? end->question : reason);
                if (d)
                    spdlog::warn("stage parked issue_id={} stage={}: the agent needs a human: {} (answer with `vik-host issue "
                                 "retry {} --message TEXT`)",
                                 id, stage, end ? end->question : reason, id);
                break;
            case Outcome::resume_failed:
                spdlog::warn("conversation not continued issue_id={} stage={}: {}", id, stage, reason);
                d = claims.resume_failed(key, reason);
                break;
            case Outcome::awaiting_approval:
                d = claims.await_approval(key, reason);
                if (d) {
                    spdlog::warn("stage awaits approval issue_id={} stage={}: answer with `vik-host gate approve {}` or "
                                 "`vik-host gate reject {} --feedback TEXT`",
                                 id, stage, id, id);
                    remind_of_approval(key);
                    publish_claim(key);
                    finish_terminal_cleanup(id);
                    maybe_exit();
                    return; // not a block anyone is told of now: the reminder tells of a long wait
                }
                break;
            case Outcome::blocked_by_operator:
            case Outcome::blocked_by_fault: {
                std::string why = outcome == Outcome::blocked_by_operator ? "cancelled by an operator" : reason;
                claims.block(key, why);
                d = Decision{Decision::block, 0, 0, why, {}};
                break;
            }
            case Outcome::dropped:
            case Outcome::dropped_terminal:
                claims.release(key);
                break;
            }
            if (!d)
                spdlog::info("stage ended on a released claim issue_id={} stage={}: {}; nothing follows", id, stage, d.error());
            else
                apply_decision(key, workdir, outcome, *d, reason);
        }
        publish_claim(key);
        finish_terminal_cleanup(id);
        maybe_exit();
    }

    // What follows a pair's end: its retry timer, its route, and the outcome's notification.
    void apply_decision(const PairKey &key, const fs::path &workdir, Outcome outcome, const Decision &d,
                        const std::string &reason) {
        const auto &[id, stage] = key;
        if (d.kind == Decision::retry) {
            spdlog::info("retry queued issue_id={} stage={} kind={} in_ms={} reason={}", id, stage, claims.find(key)->retry_kind,
                         seconds_to_ms(d.delay_sec), d.reason);
            arm_retry(key, d.token, d.delay_sec);
        } else if (d.kind == Decision::block) {
            spdlog::warn("stage blocked issue_id={} stage={}: {}", id, stage, d.reason);
        } else if (d.kind == Decision::route) {
            route(key, d);
        }
        notify_outcome(id, stage, workdir, outcome, d, reason);
    }

    // on_fail sends the issue to another stage: the tracker moves it to that stage's state; the
    // failed pair waits (routed) for the issue to come back. A tracker that cannot set the state
    // leaves the pair blocked, saying why.
    void route(const PairKey &key, const Decision &d) {
        const workflow::Stage *target = find_stage(d.target);
        if (!target) {
            std::string why = "failed; on_fail names stage '" + d.target +
                              "', which the reloaded workflow does not have; last error: " + d.reason;
            spdlog::warn("stage blocked issue_id={} stage={}: {}", key.first, key.second, why);
            claims.route_failed(key, why);
            publish_claim(key);
            return;
        }
        const std::string state = target->state;
        spdlog::warn("stage failed; routing issue_id={} stage={} to stage={} (state '{}'): {}", key.first, key.second, d.target,
                     state, d.reason);
        intake->write(
            "set-state", key.first, state,
            guard.wrap(key.first, key.second,
                       [this, key, d, state](StepResult r) {
                           const Claim *c = claims.find(key);
                           if (!c || !c->route_pending) return; // an operator or a cleanup acted meanwhile
                           if (!r.ok) {
                               std::string why = "failed; on_fail could not route to stage '" + d.target + "': setting state '" +
                                                 state + "' failed: " + r.error + "; last error: " + d.reason;
                               spdlog::warn("stage blocked issue_id={} stage={}: {}", key.first, key.second, why);
                               claims.route_failed(key, why);
                               publish_claim(key);
                               return;
                           }
                           intake->learn_state(key.first, state, intake->now());
                           claims.routed(key);
                           publish("routed", key.first, key.second, boost::json::object{{"to", d.target}, {"state", state}});
                           request_intake(); // the target stage starts now, not an idle_sec later
                       }),
            key.second);
    }

    // The notification hook point after a stage's end (VIK_HOOK_ON_OUTCOME): completed, failed,
    // or blocked (by its policy, an operator or a fault). Dropped runs notify nothing.
    void notify_outcome(const std::string &id, const std::string &stage, fs::path workdir, Outcome outcome, const Decision &d,
                        const std::string &reason) {
        std::string kind = d.kind == Decision::block       ? "blocked"
                           : outcome == Outcome::completed ? "completed"
                           : outcome == Outcome::failed    ? "failed"
                                                           : "";
        if (kind.empty()) return;
        Issue issue;
        if (const Issue *known = intake->newest(id))
            issue = *known;
        else
            issue.id = id;
        if (workdir.empty())
            if (auto w = layout.workspace(id); w && layout.has_workspace(id)) workdir = *w;
        launcher->on_outcome(issue, workdir, stage, kind, d.kind == Decision::block ? d.reason : reason,
                             [id, stage, kind](StepResult r) {
                                 if (!r.ok) spdlog::warn("on_{} hook failed issue_id={} stage={}: {}", kind, id, stage, r.error);
                             });
    }

    // ---- schedules -----------------------------------------------------------------------------

    // A schedule fired: its issue is set to its state through the tracker, and an intake follows
    // at once, so the stage taking that state starts as for any issue. A failed write is logged;
    // the next firing tries again.
    void scheduled_firing(const workflow::Schedule &s, std::chrono::sys_seconds due) {
        std::string name = s.name, id = s.issue, state = s.state;
        intake->write("set-state", id, state, guard.wrap(id, "", [this, name, id, state, due](StepResult r) {
            if (!r.ok) {
                spdlog::error("schedule firing failed schedule={} issue_id={}: setting state '{}' failed: {}", name, id, state,
                              r.error);
                return;
            }
            intake->learn_state(id, state, intake->now());
            spdlog::info("issue state changed issue_id={} state={}: schedule {}", id, state, name);
            publish("scheduled", id, "",
                    boost::json::object{{"schedule", name}, {"state", state}, {"due", util::rfc3339_utc(due)}});
            request_intake();
        }));
    }

    // ---- human gates -------------------------------------------------------------------------

    // A pair awaiting approval longer than its gate's notify_after_sec is announced once
    // (`gate_waiting`: a log line, listeners, webhooks). `after_sec` counts from now.
    void remind_of_approval(const PairKey &key) {
        approval_reminders.erase(key);
        const Claim *c = claims.find(key);
        const workflow::Stage *st = stage_of(key);
        if (!c || !c->awaiting_approval || !st) return;
        // A stage without a human gate waits only because the host could not move its issue back
        // (gate_failed): nobody expects that wait, so it is announced at once.
        if (st->gate.human && st->gate.notify_after_sec <= 0) return;
        double waited = std::chrono::duration<double>(clock.wall_now() - c->since).count();
        double after_sec = st->gate.human ? st->gate.notify_after_sec - waited : 0;
        auto &timer = approval_reminders[key];
        timer = clock.make_timer(io);
        timer->start(std::chrono::milliseconds(seconds_to_ms(std::max(0.0, after_sec))), [this, key] {
            guard(key.first, key.second, [&] {
                approval_reminders.erase(key);
                const Claim *c = claims.find(key);
                if (!c || !c->awaiting_approval) return;
                auto waited = std::chrono::duration_cast<std::chrono::seconds>(clock.wall_now() - c->since).count();
                std::string reason = "waits for approval since " + util::rfc3339_utc(c->since) + " (" + std::to_string(waited) +
                                     " s): `vik-host gate approve " + key.first + "` or `vik-host gate reject " + key.first +
                                     " --feedback TEXT`";
                spdlog::warn("gate waiting issue_id={} stage={}: {}", key.first, key.second, reason);
                publish("gate_waiting", key.first, key.second, boost::json::object{{"reason", reason}, {"waiting_sec", waited}});
            });
        });
    }

    // A human's verdict on the issue's pairs awaiting approval (`vik-host gate approve|reject`, the
    // API): how many pairs it answered, or why none. Approval lets the run stand (the pair ends
    // as a completed run would); a rejection re-runs the stage at once with `feedback` in its
    // prompt (`gate_feedback`), the issue moved back to the stage's state if the agent moved it on.
    std::expected<size_t, std::string> gate_verdict(const std::string &id, bool approve, const std::string &feedback) {
        std::vector<PairKey> keys = claims.awaiting_approval(id);
        if (keys.empty()) return std::unexpected("issue " + id + " has no stage awaiting approval");
        for (const PairKey &key : keys)
            guard(key.first, key.second, [&] {
                approval_reminders.erase(key);
                const workflow::Stage *st = find_stage(key.second);
                if (!st) { // a reload (or an edit while the host was down) removed the stage: nothing follows
                    spdlog::info("gate answered for a stage the workflow no longer has issue_id={} stage={}; released", id,
                                 key.second);
                    claims.release(key);
                    publish_claim(key);
                    return;
                }
                if (approve) {
                    spdlog::info("gate approved issue_id={} stage={}", id, key.second);
                    approve_when_known(key, st->state);
                    return;
                }
                spdlog::info("gate rejected issue_id={} stage={}{}", id, key.second, feedback.empty() ? "" : " with feedback");
                auto d = claims.rejected(key, feedback);
                publish_claim(key);
                if (d) move_back_then_retry(key, st->state, d->token);
            });
        publish("operator", id, "", boost::json::object{{"action", approve ? "approve" : "reject"}, {"count", keys.size()}});
        return keys.size();
    }

    // An approved run stands as a completed one: whether the issue stayed in the stage's state
    // decides between a continuation and the end of the pair, so the host must know where it is
    // (right after a restart no pull has told it yet: it asks).
    void approve_when_known(const PairKey &key, const std::string &state) {
        auto decide = [this, key, state](const Issue *known) {
            auto d = claims.approved(key, known && known->state == state);
            if (d) apply_decision(key, {}, Outcome::completed, *d, "");
            publish_claim(key);
            request_intake(); // the issue goes on now, not an idle_sec later
        };
        if (const Issue *known = intake->newest(key.first)) return decide(known);
        intake->fetch({key.first}, guard.wrap(key.first, key.second, [this, key, decide](Observation o) {
            const Claim *c = claims.find(key);
            if (!c || !c->awaiting_approval) return; // answered or released meanwhile
            std::optional<Issue> now = o.result ? intake->refreshed(key.first, *o.result, o.started) : std::nullopt;
            decide(now ? &*now : nullptr);
        }));
    }

    // A rejected run's retry waits until the issue is back in its stage's state (the agent may
    // have moved it on); a tracker that cannot tell or move leaves the pair blocked, saying why.
    // The issue stays held meanwhile (`gating`): the stage the agent moved it to must not start.
    void move_back_then_retry(const PairKey &key, const std::string &state, uint64_t token) {
        gating.insert(key);
        intake->fetch({key.first}, guard.wrap(key.first, key.second, [this, key, state, token](Observation o) {
            gating.erase(key);
            if (!claims.token_current(key, token)) return; // an operator or a cleanup acted meanwhile
            // The issue stays where the agent put it: the pair waits for a human again (a plain block
            // would be cleared by that state and let the next stage start on the rejected work).
            auto blocked = [this, key](const std::string &why) {
                spdlog::warn("stage awaits approval again issue_id={} stage={}: {}", key.first, key.second, why);
                claims.await_approval(key, why);
                remind_of_approval(key);
                publish_claim(key);
            };
            if (!o.result) return blocked("rejected at its gate, but the issue could not be looked up: " + o.result.error());
            std::optional<Issue> now = intake->refreshed(key.first, *o.result, o.started);
            if (!now || now->state == state || terminal(now->state)) return arm_retry(key, token, 0);
            gating.insert(key);
            intake->write("set-state", key.first, state,
                          guard.wrap(key.first, key.second,
                                     [this, key, state, token, blocked](StepResult w) {
                                         gating.erase(key);
                                         if (!claims.token_current(key, token)) return;
                                         if (!w.ok)
                                             return blocked("rejected at its gate, but the issue could not be moved back to '" +
                                                            state + "': " + w.error);
                                         intake->learn_state(key.first, state, intake->now());
                                         spdlog::info("issue moved back issue_id={} state={}: its gate rejected the run",
                                                      key.first, state);
                                         arm_retry(key, token, 0);
                                     }),
                          key.second);
        }));
    }

    // ---- leases (several hosts) ----------------------------------------------------------------

    // This host no longer holds these pairs' leases: work under way on them stops and ends with
    // nothing recorded; idle claims (queued, blocked) go. Another host has them, or will.
    void lose_leases(const std::vector<PairKey> &pairs, const std::string &why) {
        for (const auto &key : pairs)
            guard(key.first, key.second, [&] {
                if (!claims.claimed(key)) return;
                spdlog::warn("lease lost issue_id={} stage={}: {}", key.first, key.second, why);
                if (launched.count(key) || sessions->holds(key) || gating.count(key) || reviewing.count(key)) {
                    lease_lost.insert(key);
                    sessions->cancel(key, CancelReason::lease_lost, "this host lost the pair's lease: " + why);
                    if (auto r = reviewing.find(key); r != reviewing.end())
                        r->second.cancelled = true; // its prompt is on the way
                    return;
                }
                retry_timers.erase(key);
                approval_reminders.erase(key);
                claims.release(key);
                publish_claim(key);
            });
    }

    // One intake for the cluster (on the pull's worker): the intake leader pulls the tracker and
    // publishes what it got; the others use that. A published pull older than a few intake
    // periods means the leader is stuck (paused, cut off) while still holding its lock: the host
    // then pulls the tracker itself rather than work from old news.
    std::expected<Intake::PulledText, std::string> shared_pull(const Intake::PullText &from_tracker) {
        auto lead = leases->lead_intake();
        auto direct = [this](const std::string &why) {
            if (!pulling_directly.exchange(true))
                spdlog::warn("pulling the tracker directly until a shared pull is fresh: {}", why);
        };
        if (lead && *lead) {
            pulling_directly = false;
            auto text = from_tracker();
            if (!text) return std::unexpected(text.error());
            if (auto published = leases->publish_pull(*text); !published)
                spdlog::warn("the pull could not be shared with the other hosts: {}", published.error().message);
            return Intake::PulledText{std::move(*text), "tracker"};
        }
        double stale_after = 3.0 * static_cast<double>(shared_idle_sec.load()) + 5;
        auto shared = lead ? leases->shared_pull() : std::unexpected(lead.error());
        if (shared && *shared && (*shared)->age_sec <= stale_after) {
            if (pulling_directly.exchange(false)) spdlog::info("using the intake leader's pull again ({})", (*shared)->leader);
            return Intake::PulledText{std::move((*shared)->text), "leader", (*shared)->age_sec};
        }
        std::string why =
            !shared    ? shared.error().message
            : !*shared ? std::string("no host has published a pull yet")
                       : fmt::format("the leader's ({}) newest pull is {:.0f} s old", (*shared)->leader, (*shared)->age_sec);
        direct(why);
        auto text = from_tracker();
        if (!text) return std::unexpected(text.error());
        return Intake::PulledText{std::move(*text), "tracker"};
    }

    // Pairs taken over from a host whose leases expired: resumed as after a restart.
    void adopt_leases(store::Recovery taken) {
        if (stopping || intake_done) {
            // Taken over while this host began to stop: not this host's to do; let it go at once.
            std::vector<PairKey> pairs;
            for (const auto *list : {&taken.interrupted_claims, &taken.blocked})
                for (const auto &c : *list)
                    pairs.emplace_back(c.issue_id, c.stage);
            for (const auto &r : taken.retries)
                pairs.emplace_back(r.claim.issue_id, r.claim.stage);
            keeper->let_lapse(std::move(pairs));
            return;
        }
        DurableState::Resumed r = durable.adopt(claims, std::move(taken));
        outcomes.restore(r.outcomes);
        if (r.summary.empty()) return;
        for (const auto &retry : r.retries)
            arm_retry(retry.key, retry.token, retry.delay_sec);
        for (const auto &[key, c] : claims.all())
            if (c.awaiting_approval && !approval_reminders.count(key)) remind_of_approval(key);
        spdlog::warn("work taken over from hosts whose leases expired host_id={}: {}", keeper->host_id(), r.summary);
    }

    // ---- retries -----------------------------------------------------------------------------

    void cancel_retry_timers(const std::string &id) {
        for (auto it = retry_timers.begin(); it != retry_timers.end();)
            it = it->first.first == id ? retry_timers.erase(it) : std::next(it);
    }

    void arm_retry(const PairKey &key, uint64_t token, double delay_sec) {
        auto after = std::chrono::milliseconds(seconds_to_ms(delay_sec));
        PendingRetry &r = retry_timers[key]; // a timer already there is replaced
        if (!r.timer) r.timer = clock.make_timer(io);
        r.due = clock.now() + after;
        r.timer->start(after, [this, key, token] { guard(key.first, key.second, [&] { fire_retry(key, token); }); });
    }

    // A retry timer fired: re-fetch the issue and launch only if it is still eligible.
    void fire_retry(const PairKey &key, uint64_t token) {
        if (stopping || intake_done || !claims.token_current(key, token)) return; // stale timers do nothing
        retry_timers.erase(key);
        if (keeper && !keeper->holds(key)) {
            // Several hosts: a claim whose lease this host does not hold (a block made by a fault
            // without one, or one given up a moment ago) is not this host's to run.
            spdlog::warn("retry dropped issue_id={} stage={}: this host does not hold the pair's lease", key.first, key.second);
            claims.release(key);
            publish_claim(key);
            return;
        }
        intake->fetch({key.first}, guard.wrap(key.first, key.second, [this, key, token](Observation o) {
            if (stopping || intake_done || !claims.token_current(key, token)) return;
            if (!o.result) {
                auto d = claims.requeue_no_slot(key);
                spdlog::warn("retry postponed issue_id={} stage={}: cannot refresh the issue: {}", key.first, key.second,
                             o.result.error());
                if (d) arm_retry(key, d->token, d->delay_sec);
                publish_claim(key);
                return;
            }
            // The newest knowledge: the fetch's answer unless the host learned more since it began.
            std::optional<Issue> issue = intake->refreshed(key.first, *o.result, o.started);
            const workflow::Stage *stage = find_stage(key.second);
            // A rejected run's retry whose move-back did not happen (a restart came between), or
            // the retry of a checked stage's run that a stop interrupted before it was decided: the
            // issue goes back first; the unchecked work must not go on where the agent put it.
            const Claim *queued = claims.find(key);
            bool unchecked = queued && (queued->retry_kind == "rejected" ||
                                        (stage && decided_after_run(*stage) && queued->last_error == kInterruptedReason));
            if (issue && stage && unchecked && issue->state != stage->state && !terminal(issue->state))
                return move_back_then_retry(key, stage->state, token);
            if (!issue || !stage || issue->state != stage->state || terminal(issue->state)) {
                spdlog::info("retry dropped issue_id={} stage={}: {}", key.first, key.second,
                             !stage  ? std::string("the reloaded workflow no longer has the stage")
                             : issue ? "the issue is now in state '" + issue->state + "'"
                                     : std::string("the issue is gone"));
                claims.release(key);
                publish_claim(key);
                return;
            }
            if (!has_room(issue->id, issue->state) || held(issue->id)) return retry_waits(key);
            if (keeper && !active.count(issue->id) && cfg->scheduling.max_concurrent_by_state.count(issue->state))
                return resume_within_cluster_limits(key, token, std::move(*issue));
            launch_retry(key, *issue);
        }));
    }

    // Several hosts: a state with a limit counts the issues at work on every host, and a queued
    // claim is not among them while it waits. Before its retry runs, it takes its place in that
    // count again, counted and taken under the cluster's lock, so retries firing on several hosts
    // at once cannot together exceed the limit.
    void resume_within_cluster_limits(const PairKey &key, uint64_t token, Issue issue) {
        keeper->resume({key, issue.state}, cfg->scheduling.max_concurrent_by_state,
                       guard.wrap(key.first, key.second, [this, key, token, issue](std::expected<bool, std::string> may) {
                           bool marked = may && *may; // the store counts the claim as running from now on
                           if (stopping || intake_done || !claims.token_current(key, token)) {
                               // Not run after all: the store gets the claim as it stands again.
                               if (marked && claims.find(key)) claims.resend(key);
                               return;
                           }
                           if (!may)
                               spdlog::warn(
                                   "retry postponed issue_id={} stage={}: the cluster's per-state count cannot be asked: {}",
                                   key.first, key.second, may.error());
                           else if (!*may)
                               spdlog::info("retry waits issue_id={} stage={}: the state's limit is reached on the hosts "
                                            "(scheduling.max_concurrent_by_state.{})",
                                            key.first, key.second, issue.state);
                           if (!marked || !has_room(issue.id, issue.state) || held(issue.id)) return retry_waits(key);
                           launch_retry(key, issue);
                       }));
    }

    // The retry cannot run now (no slot, its state full, or held back): it is queued again.
    void retry_waits(const PairKey &key) {
        auto d = claims.requeue_no_slot(key);
        if (!d) return;
        spdlog::info("retry queued issue_id={} stage={} kind={} in_ms={} reason={}", key.first, key.second,
                     claims.find(key)->retry_kind, seconds_to_ms(d->delay_sec), d->reason);
        arm_retry(key, d->token, d->delay_sec);
        publish_claim(key);
    }

    void launch_retry(const PairKey &key, const Issue &issue) {
        const Claim &c = claims.start(key, issue.state);
        spdlog::info("retry launching issue_id={} stage={} kind={} attempt={}", key.first, key.second, c.retry_kind, c.runs);
        begin_stage(issue, key.second);
    }

    // ---- workspaces of terminal issues ---------------------------------------------------------

    // A terminal issue's claims are released and its workspace removed. While any stage of it is
    // still launching, running or finishing (its after_run, say), only its idle claims go: the rest
    // waits for the last stage to end (finish_terminal_cleanup), so no stage ends on a claim that
    // vanished under it.
    void clean_terminal(const Issue &issue) {
        if (active.count(issue.id)) {
            claims.release_idle(issue.id);
            gates.cancel(issue.id); // its end releases the pair (removal_pending)
            if (removal_pending.insert(issue.id).second)
                spdlog::info("terminal cleanup deferred issue_id={}: {} stage(s) still running", issue.id,
                             active.at(issue.id).running.size());
            return;
        }
        claims.release_issue(issue.id);
        outcomes.forget(issue.id);
        if (layout.has_workspace(issue.id)) remove_workspace(issue);
    }

    void remove_workspace(const Issue &issue) {
        if (stopping || removing.count(issue.id)) return;
        if (janitor->retained(issue.id)) return;
        removing.insert(issue.id);
        launcher->remove_workspace(issue, [this, id = issue.id](StepResult r) {
            removing.erase(id);
            if (!r.ok)
                spdlog::error("workspace not removed issue_id={}: {}", id, r.error);
            else
                spdlog::info("workspace removed issue_id={} (terminal state)", id);
        });
    }

    // Terminal cleanup deferred while stages of the issue were launching, running or finishing:
    // once the last one has ended, the issue's claims go and its workspace is removed.
    void finish_terminal_cleanup(const std::string &id) {
        if (active.count(id) || !removal_pending.count(id)) return;
        removal_pending.erase(id);
        claims.release_issue(id);
        outcomes.forget(id);
        cancel_retry_timers(id);
        Issue issue;
        if (const Issue *known = intake->newest(id))
            issue = *known;
        else
            issue.id = id;
        remove_workspace(issue);
    }

    // ---- operator control ----------------------------------------------------------------------

    // `vik-host issue retry` queued stages of `id` to run now: their timers are re-armed (a retry
    // checks the issue is still eligible before it launches).
    void retry_queued_by_operator(const std::string &id, const std::vector<std::pair<PairKey, Decision>> &queued) {
        for (const auto &[key, d] : queued) {
            arm_retry(key, d.token, d.delay_sec);
            publish_claim(key);
        }
        publish("operator", id, "", boost::json::object{{"action", "retry"}, {"count", queued.size()}});
    }

    // ---- reloading the workflow ----------------------------------------------------------------

    // Each intake first looks at the workflow file: an edit is reloaded (once per edit).
    void reload_if_edited() {
        std::optional<FileStamp> now = stamp_of(cfg->workflow_path);
        if (now && now != workflow_stamp) reload("the file changed"); // (unreadable at the last look: changed too)
    }

    // Reads the workflow again and, when it passes every check `run` makes at start, applies it
    // to new work: dispatch, limits, retry rules, prompts, hooks and agent profiles. Sessions and
    // hooks under way keep the config they started with. A refused edit changes nothing.
    void reload(const char *why) {
        workflow_stamp = stamp_of(cfg->workflow_path); // an invalid edit is reported once, not every cycle
        auto next = load_for_reload(cfg.get(), registry);
        if (next) {
            try {
                sessions->configure(**next, registry); // new runtimes start before anything changes
            } catch (const std::exception &e) {
                next = std::unexpected(std::string(e.what()));
            }
        }
        if (!next) {
            spdlog::error("workflow reload refused ({}): {}; the config loaded before stays in force", why, next.error());
            publish("reload_refused", "", "", boost::json::object{{"error", next.error()}});
            return;
        }
        const workflow::Config &now = cfg.adopt(std::move(*next));
        shared_idle_sec = now.idle_sec;
        claims.set_policy(now.scheduling);
        // Queued and blocked pairs of stages the edit removed have nothing to run, nor has a
        // route to a removed stage anything to wait for.
        size_t dropped = 0;
        for (const auto &[key, claim] : claims.all())
            if (claim.state != ClaimState::running &&
                (!find_stage(key.second) || (!claim.routed_to.empty() && !find_stage(claim.routed_to)))) {
                retry_timers.erase(key);
                claims.release(key);
                publish_claim(key);
                ++dropped;
            }
        spdlog::info(
            "workflow reloaded ({}) generation={} stages={} agents={} max_issue_concurrency={}{}; running sessions "
            "keep the config they started with",
            why, cfg.generation(), now.stages.size(), now.agents.size(), now.max_issue_concurrency,
            dropped ? fmt::format("; {} queued, blocked or routed pair(s) released (their stage or route target was removed)",
                                  dropped)
                    : "");
        publish("reloaded", "", "", boost::json::object{{"generation", cfg.generation()}});
    }

    // ---- stopping --------------------------------------------------------------------------

    void wait_signals() {
        signals.async_wait([this](const boost::system::error_code &ec, int sig) {
            if (ec) return;
            if (sig == SIGHUP) {
                if (!stopping) guard("", "", [this] { reload("SIGHUP"); });
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
            processes.kill_all(SIGKILL);
            exit_code = 130;
            io.stop();
        });
    }

    void stop() {
        if (stopping) return;
        ++signals_seen;
        begin_stop();
    }

    void begin_stop() {
        stopping = true;
        status.stopping = true;
        status.next_intake_at.reset();
        intake_timer->cancel();
        retry_timers.clear(); // their timers are cancelled as they go
        if (schedules) schedules->stop();
        if (keeper) keeper->stop_adopting();
        publish("stopping", "", "");
        sessions->cancel_all(CancelReason::shutdown);
        // Hooks and prompt commands in flight belong to the stop too.
        processes.kill_all(SIGKILL);
        shutdown_timer->start(std::chrono::seconds(options.shutdown_grace_sec), [this] {
            spdlog::error("stop did not finish within {} s; exiting with {} run(s) left", options.shutdown_grace_sec,
                          sessions->size());
            processes.kill_all(SIGKILL);
            exit_code = 1;
            io.stop();
        });
        maybe_exit();
    }

    void maybe_exit() {
        if (!(stopping || intake_done)) return;
        if (!sessions || !sessions->empty() || runner.inflight() > 0 || !active.empty()) return;
        shutdown_timer->cancel();
        io.stop();
    }

    // Creates the parts and their plugin instances (tracker, hooks, runtimes, in that order),
    // opens the control channel (OperatorControl) and starts listening for signals; throws
    // naming the plugin (or the channel) that could not start.
    void prepare() {
        if (prepared) return;
        intake = std::make_unique<Intake>(cfg, create_tracker(cfg.get(), registry), runner, budgets, guard,
                                          [this] { return clock.now(); });
        janitor = std::make_unique<WorkspaceJanitor>(cfg, layout, *intake, clock, guard);
        std::vector<std::unique_ptr<plugins::HooksInstance>> hooks;
        for (auto &hp : workflow::selected_hooks(cfg.get(), registry)) { // plugins.hooks: which, in order
            auto h = plugins::HooksInstance::create(hp, cfg->plugin_settings(hp->manifest.id));
            if (!h) throw std::runtime_error("hooks plugin '" + hp->manifest.id + "' refused to start: " + h.error().message);
            hooks.push_back(std::move(*h));
        }
        launcher = std::make_unique<StageLauncher>(cfg, layout, std::move(hooks), runner, budgets, commands, options.plugin_dirs);
        sessions = std::make_unique<SessionSupervisor>(
            cfg, registry, layout, io, clock, guard, feed, durable, options.plugin_dirs,
            [this](const PairKey &key, SessionEnd end) { session_ended(key, std::move(end)); });
        sessions->set_strict_events(options.strict_events);
        if (leases) {
            keeper = std::make_unique<LeaseKeeper>(
                io, clock, runner, *leases,
                LeaseKeeper::Events{
                    [this](const std::vector<PairKey> &pairs, const std::string &why) { lose_leases(pairs, why); },
                    [this](store::Recovery taken) { guard("", "", [&] { adopt_leases(std::move(taken)); }); },
                    [this] { return static_cast<int64_t>(sessions->live().size()); }});
            intake->set_write_fence([this](const std::string &id, const std::string &stage) -> std::optional<std::string> {
                if (keeper->holds({id, stage})) return std::nullopt;
                return "this host no longer holds the lease of issue " + id + " stage " + stage +
                       " (another host may run it); the write was not made";
            });
            intake->set_shared_pull([this](const Intake::PullText &from_tracker) { return shared_pull(from_tracker); });
        }
        control = std::make_unique<OperatorControl>(
            io, cfg->scoped_root(), *intake, *sessions, claims, guard,
            [this](const std::string &id, const auto &queued) { retry_queued_by_operator(id, queued); },
            [this](const std::string &id, bool approve, const std::string &feedback) {
                return gate_verdict(id, approve, feedback);
            },
            [this](const std::string &id) { return cancel_checks(id); });
        surface = std::make_unique<SchedulerSurface>(
            SchedulerSurface::Parts{cfg, claims, *sessions, *intake, layout, clock, status, feed},
            SchedulerSurface::Actions{
                [this] { return request_intake(); },
                [this](const std::string &id, const std::string &message) { return control->retry(id, message); },
                [this](const std::string &id) {
                    size_t n = control->cancel(id);
                    publish("operator", id, "", boost::json::object{{"action", "cancel"}, {"count", n}});
                    return n;
                },
                [this](const PairKey &key) -> std::optional<SchedulerClock::time_point> {
                    auto it = retry_timers.find(key);
                    if (it == retry_timers.end()) return std::nullopt;
                    return it->second.due;
                },
                [this](const std::string &id, bool approve, const std::string &feedback) {
                    return gate_verdict(id, approve, feedback);
                }});
        schedules = std::make_unique<ScheduleRunner>(
            io, clock, guard, options.store,
            [this](const workflow::Schedule &s, std::chrono::sys_seconds due) { scheduled_firing(s, due); });
        if (keeper)
            schedules->set_claim(
                [this](const std::string &name, std::chrono::sys_seconds due, std::function<void(bool)> decided) {
                    keeper->claim_firing(name, due, std::move(decided));
                });
        wait_signals();
        prepared = true;
    }

    // What the store kept from the last run goes back into the claim table before the first
    // intake (durable_state.hpp states the rules); its retries wait for the rest of their delay.
    void resume() {
        if (!durable.enabled()) return;
        DurableState::Resumed r = durable.recover(claims, clock.wall_now());
        outcomes.restore(r.outcomes);
        schedules_fired = std::move(r.schedules);
        for (const auto &retry : r.retries)
            arm_retry(retry.key, retry.token, retry.delay_sec);
        // Waits for a verdict from before the restart: their reminder keeps its time.
        for (const auto &[key, c] : claims.all())
            if (c.awaiting_approval) remind_of_approval(key);
        spdlog::info("{} db={}", r.summary, durable.location());
    }

    void start() {
        prepare();
        spdlog::info("starting vik: workflow={} tracker={} stages={} max_issue_concurrency={}", cfg->workflow_path.string(),
                     cfg->tracker_kind, cfg->stages.size(), cfg->max_issue_concurrency);
        resume();
        if (keeper) keeper->start();
        schedules->start(cfg->schedules, schedules_fired);
        workflow_stamp = stamp_of(cfg->workflow_path);
        asio::post(io, [this] { guard("", "", [this] { start_intake(); }); });
    }

    int run() {
        start();
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
        // Nothing may outlive the loop: sessions and hooks are killed, then workers joined, and
        // only then do the plugin instances go.
        processes.kill_all(SIGKILL);
        control.reset();
        if (sessions) sessions->clear();
        runner.join();
    }
};

Orchestrator::Orchestrator(const workflow::Config &config, const plugins::Registry &registry, process::ProcessService &processes,
                           OrchestratorOptions options)
    : impl_(std::make_unique<Impl>(config, registry, processes, std::move(options))) {}

Orchestrator::~Orchestrator() = default;

void Orchestrator::prepare() { impl_->prepare(); }

int Orchestrator::run() { return impl_->run(); }

bool Orchestrator::has_stuck_work() const { return impl_->runner.inflight() > 0; }

void Orchestrator::start() { impl_->start(); }

void Orchestrator::stop() { impl_->stop(); }

int Orchestrator::exit_code() const { return impl_->exit_code; }

asio::io_context &Orchestrator::io() { return impl_->io; }

OperatorSurface &Orchestrator::surface() {
    if (!impl_->surface) throw std::logic_error("Orchestrator::surface() before prepare()");
    return *impl_->surface;
}

} // namespace vik::orchestrator
