#include "orchestrator/session_supervisor.hpp"

#include "orchestrator/agent_choice.hpp"
#include "orchestrator/template_context.hpp"
#include "orchestrator/tracker_factory.hpp"
#include "util/ids_and_time.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

namespace vik::orchestrator {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

// One session of an (issue, stage), from start to finish.
struct SessionSupervisor::StageRun {
    PairKey key;
    std::string title, state;      // the issue's, when the session started
    DurableState::RunStart record; // the run as the store keeps it
    std::string agent;             // the stage's agent profile (or its reviewer's)
    bool review = false;           // a reviewer's session: its end is told as a review
    std::string session_id;
    std::chrono::system_clock::time_point started_at;
    std::unique_ptr<session::SessionRecorder> recorder;
    std::unique_ptr<plugins::AgentSession> session;
    std::unique_ptr<SchedulerTimer> overall, stall;
    SchedulerClock::time_point last_activity; // the stall watchdog's reference
    CancelReason cancel = CancelReason::none;
    std::string cancel_detail;
    double stall_sec = 0, timeout_sec = 0;
    bool finished = false;
    std::string resumed_from;          // the conversation this run continues (empty: a fresh one)
    bool rate_limited = false;         // the latest rate limit reported says the limit is hit
    bool warned_invalid_event = false; // an invalid event was reported (once per session)
    std::optional<std::chrono::system_clock::time_point> rate_limited_until; // and when it resets
};

namespace {

// The one mapping from a runtime's final status and the host's cancel reason to an outcome.
// A timeout or a stall is a failure whatever the runtime says; a session the host cancelled
// for another reason ends as its reason says unless it completed anyway.
Outcome outcome_of(int32_t status, CancelReason cancel) {
    if (cancel == CancelReason::timeout || cancel == CancelReason::stall || cancel == CancelReason::invalid_event)
        return Outcome::failed;
    if (status == VIK_SESSION_COMPLETED) return Outcome::completed;
    if (cancel == CancelReason::none) return status == VIK_SESSION_FAILED ? Outcome::failed : Outcome::dropped;
    switch (cancel) {
    case CancelReason::operator_:
        return Outcome::blocked_by_operator;
    case CancelReason::fault:
        return Outcome::blocked_by_fault;
    case CancelReason::terminal:
        return Outcome::dropped_terminal;
    default:
        return Outcome::dropped;
    }
}

// The state the session record ends in.
// What the session record says: completed, failed or cancelled. A parked run ended as its
// runtime said; a conversation that could not be continued is a failed session.
const char *record_state(Outcome o, int32_t status) {
    switch (o) {
    case Outcome::completed:
        return "completed";
    case Outcome::failed:
    case Outcome::resume_failed:
        return "failed";
    case Outcome::input_required:
        return status == VIK_SESSION_COMPLETED ? "completed" : "failed";
    default:
        return "cancelled";
    }
}

} // namespace

SessionSupervisor::SessionSupervisor(const LiveConfig &config, const plugins::Registry &registry, const workspace::Layout &layout,
                                     asio::io_context &io, SchedulerClock &clock, const FaultGuard &guard, ChangeFeed &feed,
                                     DurableState &durable, std::string plugin_dirs, OnEnded on_ended)
    : cfg_(config), layout_(layout), io_(io), clock_(clock), guard_(guard), feed_(feed), durable_(durable),
      plugin_dirs_(std::move(plugin_dirs)), on_ended_(std::move(on_ended)) {
    configure(cfg_.get(), registry);
}

// The runtime instances and profile texts of `cfg`; a reload calls it with the new config before
// adopting it (new runtimes get an instance; instances of runtimes no profile uses any more stay,
// as their sessions may still run).
void SessionSupervisor::configure(const workflow::Config &cfg, const plugins::Registry &registry) {
    std::map<std::string, std::unique_ptr<plugins::RuntimeInstance>> started; // new runtimes only
    std::set<std::string> resuming;
    std::map<std::string, std::string> profiles;
    for (const auto &a : cfg.agents) {
        if (!runtimes_.count(a.runtime) && !started.count(a.runtime)) {
            auto rp = registry.find_runtime(a.runtime);
            if (!rp) throw std::runtime_error("no loaded plugin provides runtime '" + a.runtime + "'");
            auto r = plugins::RuntimeInstance::create(rp, cfg.plugin_settings(rp->manifest.id));
            if (!r) throw std::runtime_error("runtime plugin '" + rp->manifest.id + "' refused to start: " + r.error().message);
            started[a.runtime] = std::move(*r);
        }
        if (auto rp = registry.find_runtime(a.runtime); a.resume && rp && rp->manifest.resumes_conversations)
            resuming.insert(a.name);
        json::object env;
        for (auto &[k, v] : a.env)
            env[k] = v;
        profiles[a.name] = json::serialize(json::object{{"name", a.name},
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
    for (auto &[name, r] : started)
        runtimes_[name] = std::move(r);
    resuming_agents_ = std::move(resuming);
    profile_json_ = std::move(profiles);
}

SessionSupervisor::~SessionSupervisor() { clear(); }

void SessionSupervisor::clear() { runs_.clear(); }

// Variables holding the host's secrets (the tracker's credentials, the API token, webhook and
// store URLs): kept out of agent environments unless the profile passes them explicitly
// (pass_env). Hooks keep them; they run the team's own scripts.
std::set<std::string> SessionSupervisor::withheld_secrets(const workflow::AgentProfile &profile) const {
    auto listed = secret_names(cfg_.get());
    std::set<std::string> names(listed.begin(), listed.end());
    for (const auto &keep : profile.pass_env)
        names.erase(keep);
    return names;
}

bool SessionSupervisor::resumes(const std::string &agent) const { return resuming_agents_.count(agent) > 0; }

void SessionSupervisor::start(const Issue &issue, const fs::path &workdir, const workflow::Stage &stage, std::string prompt,
                              int64_t attempt, const ConversationToResume &resume, const std::optional<std::string> &reviewer) {
    const std::string &id = issue.id;
    const std::string &stage_name = stage.name;
    PairKey key{id, stage_name};
    auto not_started = [&](Outcome outcome, std::string reason) {
        SessionEnd end{outcome, std::move(reason), false};
        end.review = reviewer.has_value();
        on_ended_(key, std::move(end));
    };
    const std::string &agent = reviewer ? *reviewer : agent_for(stage, issue);
    const workflow::AgentProfile *chosen = cfg_->agent(agent);
    if (!chosen || !profile_json_.count(chosen->name)) { // a reload took the profile away while the run was prepared
        spdlog::info("session not started issue_id={} stage={}: the reloaded workflow no longer has agent profile '{}'", id,
                     stage_name, agent);
        return not_started(Outcome::dropped, "the workflow no longer has agent profile '" + agent + "'");
    }
    const workflow::AgentProfile &profile = *chosen;
    auto run = std::make_shared<StageRun>();
    run->key = key;
    run->title = issue.title;
    run->state = issue.state;
    run->agent = profile.name;
    run->review = reviewer.has_value();
    run->started_at = clock_.wall_now();
    run->overall = clock_.make_timer(io_);
    run->stall = clock_.make_timer(io_);
    run->session_id = util::uuid_v7();
    run->timeout_sec = profile.timeout_sec;
    run->stall_sec = profile.stall_timeout_sec;
    if (!run->review && resumes(profile.name) && profile.name == resume.agent) run->resumed_from = resume.id;
    fs::path file = layout_.session_file(id, stage_name, run->session_id);
    try {
        run->recorder = std::make_unique<session::SessionRecorder>(file, run->session_id, id, stage_name);
    } catch (const std::exception &e) {
        spdlog::error("session not started issue_id={} stage={}: {}", id, stage_name, e.what());
        return not_started(Outcome::failed, e.what());
    }
    runs_[key] = run;
    run->record = DurableState::RunStart{run->session_id, id, stage_name, profile.name, file.string(), attempt, run->started_at};
    durable_.run_started(run->record);

    std::weak_ptr<StageRun> weak = run;
    plugins::SessionListener listener;
    // Events arrive on the loop in batches, with a bounded number in flight per session: a
    // flooding agent blocks on its pipe instead of growing the host's memory.
    listener.dispatch = [this](std::function<void()> f) { asio::post(io_, std::move(f)); };
    listener.on_event = [this, weak](std::string_view event) {
        if (auto r = weak.lock()) guard_(r->key.first, r->key.second, [&] { on_event(*r, event); });
    };
    // Once per batch, not per event: the session's activity time (what the stall watchdog reads)
    // and the recorder's write.
    listener.on_batch_end = [this, weak] {
        if (auto r = weak.lock()) {
            r->last_activity = clock_.now();
            if (r->recorder) r->recorder->flush();
        }
    };
    listener.on_finish = [this, weak](int32_t status, std::string detail) {
        if (auto r = weak.lock()) guard_(r->key.first, r->key.second, [&] { on_finish(r, status, detail); });
    };
    plugins::SessionStart req;
    req.session_id = run->session_id;
    req.profile_json = profile_json_.at(profile.name);
    req.prompt = std::move(prompt);
    req.workdir = workdir.string();
    req.resume_conversation = run->resumed_from;
    // The profile's env overrides what the agent would inherit (one entry per name).
    std::set<std::string> overridden;
    for (auto &[k, v] : profile.env)
        overridden.insert(k);
    auto secrets = withheld_secrets(profile);
    for (auto &[k, v] : issue_environment(cfg_.get(), issue, workdir, stage_name, plugin_dirs_))
        if (!secrets.count(k) && !overridden.count(k)) req.env.push_back(k + "=" + v);
    for (auto &[k, v] : profile.env)
        req.env.push_back(k + "=" + v);
    auto started = runtimes_.at(profile.runtime)->start(req, std::move(listener));
    if (!started) {
        std::string err = "agent session could not start: " + started.error().message;
        run->recorder->record(json::serialize(json::object{{"kind", "error"}, {"detail", err}}));
        on_finish(run, VIK_SESSION_FAILED, err);
        return;
    }
    run->session = std::move(*started);
    run->recorder->set_running();
    ++totals_.sessions_started;
    spdlog::info("session started issue_id={} stage={} session_id={} agent={} file={}{}{}", id, stage_name, run->session_id,
                 profile.name, file.string(), run->review ? " review=true" : "",
                 run->resumed_from.empty() ? "" : " resumes_conversation=" + run->resumed_from);
    if (run->timeout_sec > 0)
        run->overall->start(std::chrono::milliseconds(seconds_to_ms(run->timeout_sec)), [this, weak] {
            auto r = weak.lock();
            if (!r || r->finished) return;
            guard_(r->key.first, r->key.second, [&] { cancel_run(*r, CancelReason::timeout, ""); });
        });
    run->last_activity = clock_.now();
    if (run->stall_sec > 0) arm_stall(run, std::chrono::milliseconds(seconds_to_ms(run->stall_sec)));
    if (!feed_.empty())
        feed_.publish(Change{"session_started", id, stage_name, util::rfc3339_utc(clock_.wall_now()), to_json(view_of(*run))});
}

// The stall watchdog. Events only move `last_activity` (no timer call per event); when the
// timer fires it compares: a session quiet for stall_sec is stalled, otherwise the timer waits
// for the rest of the window counted from the last event.
void SessionSupervisor::arm_stall(const std::shared_ptr<StageRun> &run, std::chrono::milliseconds after) {
    std::weak_ptr<StageRun> weak = run;
    run->stall->start(after, [this, weak] {
        auto r = weak.lock();
        if (!r || r->finished || r->cancel != CancelReason::none) return;
        auto window = std::chrono::milliseconds(seconds_to_ms(r->stall_sec));
        auto quiet = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now() - r->last_activity);
        if (quiet < window) return arm_stall(r, window - quiet);
        guard_(r->key.first, r->key.second, [&] { cancel_run(*r, CancelReason::stall, ""); });
    });
}

bool SessionSupervisor::cancel_run(StageRun &run, CancelReason why, const std::string &detail) {
    if (run.finished || run.cancel != CancelReason::none) return false;
    run.cancel = why;
    run.cancel_detail = detail;
    if (!detail.empty()) spdlog::info("stopping session issue_id={} stage={}: {}", run.key.first, run.key.second, detail);
    if (run.session) run.session->cancel();
    return true;
}

bool SessionSupervisor::cancel(const PairKey &key, CancelReason why, const std::string &detail) {
    auto it = runs_.find(key);
    return it != runs_.end() && cancel_run(*it->second, why, detail);
}

size_t SessionSupervisor::cancel_issue(const std::string &id, CancelReason why, const std::string &detail) {
    size_t n = 0;
    for (auto &[key, run] : runs_)
        if (key.first == id && !run->finished) {
            cancel_run(*run, why, detail);
            ++n;
        }
    return n;
}

void SessionSupervisor::cancel_all(CancelReason why) {
    for (auto &[key, run] : runs_)
        cancel_run(*run, why, "");
}

void SessionSupervisor::forget(const PairKey &key) { runs_.erase(key); }

bool SessionSupervisor::holds(const PairKey &key) const { return runs_.count(key) > 0; }

bool SessionSupervisor::finishing(const PairKey &key) const {
    auto it = runs_.find(key);
    return it != runs_.end() && it->second->finished;
}

std::vector<PairKey> SessionSupervisor::live() const {
    std::vector<PairKey> out;
    for (const auto &[key, run] : runs_)
        if (!run->finished && run->cancel == CancelReason::none) out.push_back(key);
    return out;
}

std::set<std::string> SessionSupervisor::unfinished_issues() const {
    std::set<std::string> out;
    for (const auto &[key, run] : runs_)
        if (!run->finished) out.insert(key.first);
    return out;
}

bool SessionSupervisor::is_runtime_plugin(const std::string &plugin_id) const {
    for (const auto &[name, r] : runtimes_)
        if (r->plugin_id() == plugin_id) return true;
    return false;
}

void SessionSupervisor::on_event(StageRun &run, std::string_view event) {
    if (run.finished) return;
    run.recorder->record_in_batch(event); // on_batch_end flushes
    if (const std::string &problem = run.recorder->event_problem(); !problem.empty()) invalid_event(run, problem);
    if (run.recorder->took_rate_limit()) note_rate_limit(run);
    if (feed_.wants_session_events()) {
        boost::system::error_code ec;
        json::value v = json::parse(event, ec);
        json::object data = !ec && v.is_object() ? std::move(v.as_object()) : json::object{{"kind", "unknown"}, {"raw", event}};
        feed_.publish(
            Change{"session_event", run.key.first, run.key.second, util::rfc3339_utc(clock_.wall_now()), std::move(data)});
    }
}

// An event outside the vocabulary (docs/runtimes.md): kept in the session file as it came, and
// reported once per session; with `run --strict` (plugin authors' mode) it fails the session.
void SessionSupervisor::invalid_event(StageRun &run, const std::string &problem) {
    if (strict_events_) {
        if (run.cancel == CancelReason::none)
            cancel_run(run, CancelReason::invalid_event,
                       "invalid event from the runtime of agent profile '" + run.agent + "': " + problem + " (run --strict)");
        return;
    }
    if (run.warned_invalid_event) return;
    run.warned_invalid_event = true;
    spdlog::warn("invalid event issue_id={} stage={} session_id={} agent={}: {}; kept in the session file as sent (later ones "
                 "of this session are not reported; `run --strict` fails the session instead)",
                 run.key.first, run.key.second, run.session_id, run.agent, problem);
}

// The latest rate limit of a session, as its agent profile's and, when the limit is hit, as the
// time a retry of this run waits for. vik's fields: `remaining` (0: the limit is hit) and
// `reset_at` (RFC 3339, or seconds since the epoch); vik-host also reads `limited` (true: hit)
// and `reset_in_sec`.
void SessionSupervisor::note_rate_limit(StageRun &run) {
    const json::value *latest = run.recorder->snapshot().if_contains("rate_limits");
    if (latest == nullptr || !latest->is_object()) return;
    json::object limit = latest->as_object();
    auto now = clock_.wall_now();
    std::optional<std::chrono::system_clock::time_point> reset;
    auto after_epoch = [](double s) {
        return std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(s)));
    };
    if (const json::value *at = limit.if_contains("reset_at"); at && at->is_string()) {
        if (double s = util::rfc3339_seconds(std::string(at->get_string())); s > 0) reset = after_epoch(s);
    } else if (at && at->is_number()) {
        reset = after_epoch(at->to_number<double>());
    } else if (const json::value *in = limit.if_contains("reset_in_sec"); in && in->is_number()) {
        reset = now + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                          std::chrono::duration<double>(std::max(0.0, in->to_number<double>())));
    }
    const json::value *limited = limit.if_contains("limited");
    const json::value *remaining = limit.if_contains("remaining");
    bool hit = (limited && limited->is_bool() && limited->get_bool()) ||
               (remaining && remaining->is_number() && remaining->to_number<double>() <= 0);
    if (hit && !run.rate_limited)
        spdlog::warn("rate limited issue_id={} stage={} agent={}{}", run.key.first, run.key.second, run.agent,
                     reset ? " until " + util::rfc3339_utc(*reset) : "");
    run.rate_limited = hit;
    run.rate_limited_until = hit ? reset : std::nullopt;
    limit["agent"] = run.agent;
    if (!limit.contains("observed_at")) limit["observed_at"] = util::rfc3339_utc(now);
    if (reset) limit["reset_at"] = util::rfc3339_utc(*reset);
    rate_limits_[run.agent] = std::move(limit);
}

void SessionSupervisor::count_finished(const std::string &state, const json::object &snapshot) {
    (state == "completed" ? totals_.sessions_completed
     : state == "failed"  ? totals_.sessions_failed
                          : totals_.sessions_cancelled)++;
    auto number = [](const json::value *v) -> int64_t {
        if (v == nullptr) return 0;
        if (v->is_int64()) return v->get_int64();
        if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
        if (v->is_double()) return static_cast<int64_t>(v->get_double());
        return 0;
    };
    if (const auto *t = snapshot.if_contains("tokens"); t && t->is_object()) {
        totals_.tokens_input += number(t->as_object().if_contains("input"));
        totals_.tokens_output += number(t->as_object().if_contains("output"));
        totals_.tokens_cache_read += number(t->as_object().if_contains("cache_read"));
    }
    if (const auto *c = snapshot.if_contains("cost_usd"); c && c->is_double()) totals_.cost_usd += c->get_double();
}

RunningView SessionSupervisor::view_of(const StageRun &run) const {
    RunningView v;
    v.issue_id = run.key.first;
    v.stage = run.key.second;
    v.issue_title = run.title;
    v.issue_state = run.state;
    v.agent = run.agent;
    v.started_at = util::rfc3339_utc(run.started_at);
    v.finishing = run.finished;
    v.review = run.review;
    if (run.recorder) {
        v.session_file = run.recorder->file().string();
        v.session = run.recorder->snapshot();
    }
    return v;
}

std::vector<RunningView> SessionSupervisor::views() const {
    std::vector<RunningView> out;
    for (const auto &[key, run] : runs_)
        out.push_back(view_of(*run));
    return out;
}

void SessionSupervisor::on_finish(const std::shared_ptr<StageRun> &run, int32_t status, const std::string &detail) {
    if (run->finished) return;
    run->finished = true;
    run->overall->cancel();
    run->stall->cancel();
    Outcome outcome = outcome_of(status, run->cancel);
    std::string reason = detail;
    const json::object &seen = run->recorder->snapshot();
    std::string question;
    if (const auto *q = seen.if_contains("input_required"); q && q->is_string()) question = std::string(q->get_string());
    // The agent stopped to ask a human (and was not stopped by the host): the pair is parked.
    if (!question.empty() && run->cancel == CancelReason::none && (outcome == Outcome::completed || outcome == Outcome::failed)) {
        outcome = Outcome::input_required;
        reason = "input required: " + question;
    }
    // A resumed run that failed before the agent did anything (no message, tool call, subagent
    // or token usage) and not for a rate limit: the conversation could not be continued (gone,
    // expired, made elsewhere). A fresh conversation follows at once. A rate-limited failure
    // keeps its conversation and waits for the reset.
    if (outcome == Outcome::failed && run->cancel == CancelReason::none && !run->resumed_from.empty() &&
        run->recorder->work_events() == 0 && !run->rate_limited) {
        outcome = Outcome::resume_failed;
        reason = "could not continue conversation " + run->resumed_from + " (" + (reason.empty() ? "no reason given" : reason) +
                 "); starting a fresh one";
        run->recorder->record(json::serialize(json::object{{"kind", VIK_EVENT_NOTICE}, {"level", "warning"}, {"text", reason}}));
    }
    if (run->cancel == CancelReason::timeout)
        reason = "timed out after " + std::to_string(seconds_to_ms(run->timeout_sec)) + "ms";
    else if (run->cancel == CancelReason::stall)
        reason = "stalled for " + std::to_string(seconds_to_ms(run->stall_sec)) + "ms without agent activity";
    else if (run->cancel == CancelReason::invalid_event)
        reason = run->cancel_detail;
    else if (run->cancel != CancelReason::none && outcome != Outcome::completed)
        reason = run->cancel == CancelReason::shutdown ? "cancelled: vik-host is stopping" : "cancelled: " + run->cancel_detail;
    std::string state = record_state(outcome, status);
    if (outcome == Outcome::failed && run->cancel != CancelReason::none)
        run->recorder->record(json::serialize(json::object{{"kind", "error"}, {"detail", reason}}));
    run->recorder->finish(state, reason);
    // The record's snapshot is the session's summary: its token sums and, when the record is
    // incomplete, why, go to the log line that closes the session.
    const json::object &snap = run->recorder->snapshot();
    const auto &tokens = snap.at("tokens").as_object();
    count_finished(state, snap);
    durable_.run_ended(run->record, outcome == Outcome::input_required ? "input_required" : state, reason, snap,
                       clock_.wall_now());
    std::string incomplete;
    if (const auto *e = snap.if_contains("write_error"); e && e->is_string())
        incomplete += " write_error=" + std::string(e->as_string());
    if (const auto *t = snap.if_contains("truncated"); t && t->is_bool() && t->as_bool()) incomplete += " truncated=true";
    auto level = outcome == Outcome::completed ? spdlog::level::info
                 : outcome == Outcome::failed  ? spdlog::level::err
                                               : spdlog::level::warn;
    // vik's fields first (input/output tokens); then what vik-host adds: cache reads and the
    // cost where the agent reports one.
    std::string cost;
    if (const auto *c = snap.if_contains("cost_usd"); c && c->is_double() && c->get_double() > 0)
        cost = fmt::format(" cost_usd={:.6f}", c->get_double());
    const json::value *cache = tokens.if_contains("cache_read");
    spdlog::log(level, "session finished issue_id={} stage={} session_id={} state={} input_tokens={} output_tokens={}{}{}{}{}",
                run->key.first, run->key.second, run->session_id, state, json::serialize(tokens.at("input")),
                json::serialize(tokens.at("output")), cache ? " cache_read_tokens=" + json::serialize(*cache) : "", cost,
                incomplete, reason.empty() ? "" : " error=" + reason);
    run->session.reset(); // the plugin releases its session now that finish was delivered
    bool after_run = outcome == Outcome::completed || outcome == Outcome::failed || outcome == Outcome::input_required ||
                     outcome == Outcome::resume_failed;
    if (!feed_.empty())
        feed_.publish(Change{"session_ended", run->key.first, run->key.second, util::rfc3339_utc(clock_.wall_now()),
                             json::object{{"outcome", state}, {"reason", reason}, {"session_id", run->session_id}}});
    SessionEnd end{outcome, reason, after_run};
    std::string conversation;
    if (const auto *sid = snap.if_contains("provider_session_id"); sid && sid->is_string())
        conversation = std::string(sid->get_string());
    bool continued = !run->resumed_from.empty();
    if (continued && !conversation.empty() && conversation != run->resumed_from) {
        // The CLI started another conversation instead: it holds only the resume prompt, not the
        // issue, so it is not worth continuing; the next run starts fresh with the whole prompt.
        spdlog::warn("conversation replaced issue_id={} stage={}: asked to continue {}, the agent reported {}; the next "
                     "run starts a fresh one",
                     run->key.first, run->key.second, run->resumed_from, conversation);
        continued = false;
        conversation.clear();
    } else if (continued) {
        conversation = run->resumed_from;
    }
    // A run whose conversation could not be continued did not deliver its prompt: the claim
    // keeps the operator's message for the fresh run (ClaimTable::resume_failed drops the
    // conversation).
    // A reviewer's conversation is not the pair's: the claim keeps the author's.
    if (outcome != Outcome::resume_failed && !run->review)
        end.conversation = ConversationUse{run->agent, conversation, continued, true};
    end.review = run->review;
    end.question = question;
    if (outcome == Outcome::failed && run->rate_limited && run->rate_limited_until) {
        double wait = std::chrono::duration<double>(*run->rate_limited_until - clock_.wall_now()).count();
        end.not_before_sec = std::clamp(wait, 0.0, kMaxRateLimitWaitSec);
    }
    on_ended_(run->key, std::move(end));
}

} // namespace vik::orchestrator
