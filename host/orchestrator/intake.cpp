#include "orchestrator/intake.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace vik::orchestrator {

namespace json = boost::json;

namespace {

void set_state(Issue &issue, const std::string &state) {
    issue.state = state;
    issue.fields["state"] = state;
}

uint32_t count_ms(std::chrono::milliseconds d) { return static_cast<uint32_t>(d.count()); }

} // namespace

Intake::Intake(const LiveConfig &config, std::unique_ptr<plugins::TrackerInstance> tracker, BlockingRunner &runner,
               CallBudgets budgets, const FaultGuard &guard, Now now)
    : cfg_(config), tracker_(std::move(tracker)), runner_(runner), budgets_(budgets), guard_(guard),
      now_(now ? std::move(now) : Now([] { return Clock::now(); })) {}

const std::string &Intake::tracker_id() const { return tracker_->plugin_id(); }

bool Intake::terminal(const std::string &state) const {
    const auto &t = cfg_->scheduling.terminal_states;
    return std::find(t.begin(), t.end(), state) != t.end();
}

const std::string *Intake::stage_state(const std::string &stage) const {
    const workflow::Stage *s = cfg_->stage(stage);
    return s ? &s->state : nullptr; // nullptr: a reload removed it; its running sessions go on until they end
}

// ---- tracker calls -----------------------------------------------------------------------------

void Intake::pull(IssueInterest interest, std::function<void(Observation)> done) {
    uint32_t timeout = count_ms(budgets_.tracker_call);
    Clock::time_point started = now_();
    // Parsed on the worker, beside the call: a large pull's JSON never holds up the loop. The
    // worker writes `parsed` before it answers; the answer is read only when the call ended in
    // time (a late worker writes into memory nobody reads).
    auto parsed = std::make_shared<std::expected<IntakeResult, std::string>>();
    auto age = std::make_shared<double>(0);
    runner_.run(
        budgets_.tracker_deadline(),
        [this, timeout, parsed, age, interest = std::move(interest), shared = shared_] {
            PullText from_tracker = [&]() -> std::expected<std::string, std::string> {
                auto r = tracker_->pull(timeout);
                if (!r) return std::unexpected(r.error().message);
                return std::move(*r);
            };
            std::expected<PulledText, std::string> text;
            if (shared) {
                text = shared(from_tracker);
            } else if (auto own = from_tracker()) {
                text = PulledText{std::move(*own), {}};
            } else {
                text = std::unexpected(own.error());
            }
            if (!text) return StepResult{false, text.error(), {}};
            *age = text->age_sec;
            *parsed = parse_issues(text->text, &interest);
            if (*parsed) (*parsed)->source = text->source;
            return StepResult{true, {}, {}};
        },
        [done = std::move(done), started, parsed, age](StepResult r) {
            // What another host pulled earlier is as old as its pull: news the host learned since
            // (an agent's move) stands over it.
            auto observed = started - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(r.ok ? *age : 0));
            done(Observation{r.ok ? std::move(*parsed) : std::unexpected(r.error), observed, started});
        });
}

void Intake::fetch(const std::set<std::string> &ids, std::function<void(Observation)> done) {
    json::array list;
    for (const auto &id : ids)
        list.push_back(json::string(id));
    std::string ids_json = json::serialize(list);
    uint32_t timeout = count_ms(budgets_.tracker_call);
    Clock::time_point started = now_();
    auto unsupported = std::make_shared<bool>(false); // written by the worker, read after it answered
    runner_.run(
        budgets_.tracker_deadline(),
        [this, ids_json, timeout, unsupported] {
            auto r = tracker_->fetch(ids_json, timeout);
            if (!r) {
                *unsupported = r.error().status == VIK_UNSUPPORTED;
                return StepResult{false, r.error().message, {}};
            }
            return StepResult{true, {}, std::move(*r)};
        },
        [this, ids, done = std::move(done), started, unsupported](StepResult r) {
            if (!r.ok && *unsupported) return done(known_states(ids, started));
            done(Observation{r.ok ? parse_issues(r.value) : std::unexpected(r.error), started, std::nullopt});
        });
}

// A tracker that cannot fetch by id (its `fetch` answers VIK_UNSUPPORTED): the issues as the
// last pull (or a host write) left them. Retries and continuations still run; a refresh of
// running issues then stops nothing (an issue it does not know is answered as known, not gone).
Observation Intake::known_states(const std::set<std::string> &ids, Clock::time_point started) {
    if (!fetch_unsupported_logged_) {
        fetch_unsupported_logged_ = true;
        spdlog::warn("tracker {} cannot fetch issues by id (unsupported); retries, continuations and refreshes use the "
                     "states of the last pull (docs/plugin-sdk.md, tracker operations)",
                     tracker_id());
    }
    IntakeResult known;
    for (const auto &id : ids)
        if (auto it = latest_.find(id); it != latest_.end() && !it->second.partial) known.issues.push_back(it->second.issue);
    return Observation{std::move(known), started, std::nullopt};
}

void Intake::write(const std::string &command, const std::string &id, const std::string &value,
                   std::function<void(StepResult)> done, const std::string &stage) {
    if (fence_ && !stage.empty())
        if (auto refused = fence_(id, stage)) // answered as every write is: later, on the loop
            return runner_.run(
                budgets_.tracker_deadline(),
                [why = *refused] {
                    return StepResult{false, why, {}};
                },
                std::move(done));
    uint32_t timeout = count_ms(budgets_.tracker_call);
    runner_.run(
        budgets_.tracker_deadline(),
        [this, command, id, value, timeout]() -> StepResult {
            auto r = command == "set-state" ? tracker_->set_state(id, value, timeout) : tracker_->comment(id, value, timeout);
            if (!r) return {false, r.error().message, {}};
            return {};
        },
        std::move(done));
}

std::chrono::milliseconds Intake::next_wait(bool pulled) {
    std::chrono::milliseconds idle = std::chrono::seconds(cfg_->idle_sec);
    if (pulled) {
        if (pull_failures_in_row_ > 1)
            spdlog::info("intake recovered after {} failed pull(s) in a row; pulling every {} s again", pull_failures_in_row_,
                         cfg_->idle_sec);
        pull_failures_in_row_ = 0;
        pull_backoff_ = std::chrono::milliseconds{0};
        return idle;
    }
    ++pull_failures_in_row_;
    if (pull_failures_in_row_ == 1) return idle;
    std::chrono::milliseconds cap = std::max<std::chrono::milliseconds>(idle, kBackoffCap);
    std::chrono::milliseconds wait = idle;
    for (int64_t i = 1; i < pull_failures_in_row_ && wait < cap; ++i)
        wait *= 2;
    wait = std::min(wait, cap);
    if (wait != pull_backoff_)
        spdlog::warn("intake backing off: {} failed pull(s) in a row; next pull in {} ms{}", pull_failures_in_row_, wait.count(),
                     wait == cap ? " (the cap)" : "");
    pull_backoff_ = wait;
    return wait;
}

// ---- observations ------------------------------------------------------------------------------

Issue Intake::observe(const Issue &seen, Clock::time_point at) {
    auto it = latest_.find(seen.id);
    if (it == latest_.end() || at >= it->second.at) {
        latest_[seen.id] = Observed{seen, at, false};
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

std::vector<Issue> Intake::observe_all(const std::vector<Issue> &seen, Clock::time_point at) {
    std::vector<Issue> out;
    out.reserve(seen.size());
    for (const auto &i : seen)
        out.push_back(observe(i, at));
    return out;
}

void Intake::learn_state(const std::string &id, const std::string &state, Clock::time_point at) {
    auto it = latest_.find(id);
    if (it == latest_.end()) {
        Issue stub;
        stub.id = id;
        set_state(stub, state);
        latest_[id] = Observed{std::move(stub), at, true};
        return;
    }
    set_state(it->second.issue, state);
    it->second.at = std::max(it->second.at, at);
}

const Issue *Intake::newest(const std::string &id) const {
    auto it = latest_.find(id);
    return it == latest_.end() ? nullptr : &it->second.issue;
}

std::optional<Issue> Intake::refreshed(const std::string &id, const IntakeResult &fetched, Clock::time_point started) {
    std::optional<Issue> issue;
    for (const auto &i : fetched.issues)
        if (i.id == id) issue = observe(i, started);
    if (auto l = latest_.find(id); !issue && l != latest_.end() && l->second.at > started && !l->second.partial)
        issue = l->second.issue;
    return issue;
}

bool Intake::known_since(const std::string &id, Clock::time_point at) const {
    auto it = latest_.find(id);
    return it != latest_.end() && it->second.at > at;
}

void Intake::prune(const std::vector<Issue> &pulled, Clock::time_point started,
                   const std::function<bool(const std::string &)> &keep, const std::function<bool(const std::string &)> &active) {
    std::set<std::string> ids;
    for (const auto &i : pulled)
        ids.insert(i.id);
    for (auto it = latest_.begin(); it != latest_.end();) {
        bool kept = ids.count(it->first) || keep(it->first) || it->second.at > started;
        it = kept ? std::next(it) : latest_.erase(it);
    }
    for (auto it = absent_strikes_.begin(); it != absent_strikes_.end();)
        it = active(it->first) ? std::next(it) : absent_strikes_.erase(it);
}

// ---- reconciliation ----------------------------------------------------------------------------

std::vector<Stop> Intake::reconcile(const std::vector<Issue> &fresh, const std::set<std::string> &asked,
                                    Clock::time_point started, const std::vector<PairKey> &running,
                                    const StageState &stage_state_of) {
    std::map<std::string, const Issue *> by_id;
    for (const auto &i : fresh)
        by_id[i.id] = &i;
    std::set<std::string> running_ids;
    for (const auto &key : running)
        running_ids.insert(key.first);
    std::set<std::string> confirmed_gone;
    for (const auto &id : running_ids) {
        if (by_id.count(id)) {
            absent_strikes_.erase(id);
        } else if (asked.count(id) && !known_since(id, started)) {
            int strikes = ++absent_strikes_[id];
            if (strikes >= 2)
                confirmed_gone.insert(id);
            else
                spdlog::info(
                    "issue not visible in the tracker issue_id={} (1 of 2); its runs go on unless the next refresh confirms", id);
        }
    }
    std::vector<Stop> stops;
    for (const auto &key : running)
        guard_(key.first, key.second, [&] {
            auto it = by_id.find(key.first);
            if (it == by_id.end()) {
                if (confirmed_gone.count(key.first))
                    stops.push_back({key, CancelReason::left, "the issue is no longer visible in the tracker"});
                return;
            }
            const Issue &issue = *it->second;
            if (terminal(issue.state))
                stops.push_back({key, CancelReason::terminal, "the issue reached terminal state '" + issue.state + "'"});
            else if (const std::string *state = stage_state_of ? stage_state_of(key) : stage_state(key.second);
                     state && issue.state != *state)
                stops.push_back({key, CancelReason::left, "the issue moved to state '" + issue.state + "'"});
        });
    return stops;
}

} // namespace vik::orchestrator
