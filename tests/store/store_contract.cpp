#include "store/store_contract.hpp"

#include <catch2/catch.hpp>

namespace vik::test {

using namespace vik::store;
using namespace std::chrono_literals;

WallTime at_ms(int64_t ms) { return WallTime{std::chrono::milliseconds{ms}}; }

ClaimRecord claim(const std::string &issue, const std::string &stage) {
    ClaimRecord c;
    c.issue_id = issue;
    c.stage = stage;
    c.failures = 2;
    c.continuations = 1;
    c.runs = 3;
    c.retry_kind = "failure";
    c.last_error = "agent exited 1";
    c.issue_state = "Todo";
    return c;
}

RunRecord run(const std::string &id, const std::string &issue, const std::string &stage, int64_t start_ms) {
    RunRecord r;
    r.run_id = id;
    r.issue_id = issue;
    r.stage = stage;
    r.agent = "codex";
    r.attempt = 2;
    r.session_id = "sess-" + id;
    r.session_file = "/root/sessions/" + issue + "/" + stage + "-" + id + ".jsonl";
    r.started_at = at_ms(start_ms);
    return r;
}

RunRecord finished(RunRecord r, RunOutcome o, int64_t end_ms, int64_t tin, int64_t tout, int64_t tcache,
                   std::optional<double> cost) {
    r.outcome = o;
    r.ended_at = at_ms(end_ms);
    r.duration_sec =
        static_cast<double>(end_ms -
                            std::chrono::duration_cast<std::chrono::milliseconds>(r.started_at.time_since_epoch()).count()) /
        1000.0;
    r.tokens_in = tin;
    r.tokens_out = tout;
    r.tokens_cache_read = tcache;
    r.cost_usd = cost;
    if (o == RunOutcome::failed) {
        r.error = "agent exited 1";
        r.exit_status = 1;
    }
    return r;
}

void check_run(const RunRecord &a, const RunRecord &b) {
    CHECK(a.run_id == b.run_id);
    CHECK(a.issue_id == b.issue_id);
    CHECK(a.stage == b.stage);
    CHECK(a.agent == b.agent);
    CHECK(a.attempt == b.attempt);
    CHECK(a.session_id == b.session_id);
    CHECK(a.session_file == b.session_file);
    CHECK(a.started_at == b.started_at);
    CHECK(a.ended_at == b.ended_at);
    CHECK(a.outcome == b.outcome);
    CHECK(a.error == b.error);
    CHECK(a.exit_status == b.exit_status);
    CHECK(a.signal == b.signal);
    CHECK(a.tokens_in == b.tokens_in);
    CHECK(a.tokens_out == b.tokens_out);
    CHECK(a.tokens_cache_read == b.tokens_cache_read);
    CHECK(a.cost_usd == b.cost_usd);
    CHECK(a.duration_sec == Approx(b.duration_sec));
}

void check_round_trip(const std::function<std::unique_ptr<Store>()> &open) {
    auto now = at_ms(1'700'000'000'000);
    {
        auto s = open();
        s->claim_running(claim("A-1", "plan"), now);
        s->claim_retry_queued(claim("A-2", "code"), now + 120s, now);
        s->claim_blocked(claim("A-3", "review"), "max_attempts reached: agent exited 1", now);
        auto gated = claim("A-6", "build");
        gated.awaiting_approval = true;
        gated.gate_feedback = "cover the empty list";
        s->claim_blocked(gated, "waits for approval", now);
        s->record_outcome({"A-1", "plan", R"({"tests_passed":true})", now});
        s->record_outcome({"A-1", "plan", R"({"tests_passed":false})", now + 1s}); // the newest per stage
        s->record_outcome({"A-7", "plan", R"({"x":1})", now});
        s->forget_outcomes("A-7"); // its issue is done
        s->claim_running(claim("A-4", "plan"), now);
        s->claim_released("A-4", "plan");
        s->claim_running(claim("A-5", "plan"), now);
        s->claim_running(claim("A-5", "code"), now);
        s->release_issue("A-5");
        auto r1 = run("r1", "A-1", "plan", 1'000);
        s->record_run(r1);
        auto r2 = finished(run("r2", "A-2", "code", 2'000), RunOutcome::failed, 5'500, 100, 20, 7, 0.25);
        r2.signal = 9;
        s->record_run(run("r2", "A-2", "code", 2'000));
        s->record_run(r2); // the end replaces the start
        REQUIRE(s->flush(5s));
        CHECK_FALSE(s->write_error());

        auto h = s->history({});
        REQUIRE(h);
        REQUIRE(h->size() == 2);
        check_run((*h)[0], r2); // newest first
        check_run((*h)[1], r1);
    }
    auto s = open();
    auto rec = s->recover(now + 20s);
    REQUIRE(rec);
    REQUIRE(rec->interrupted_claims.size() == 1);
    auto &c = rec->interrupted_claims[0];
    CHECK(c.issue_id == "A-1");
    CHECK(c.stage == "plan");
    CHECK(c.state == ClaimState::running);
    CHECK(c.failures == 2);
    CHECK(c.continuations == 1);
    CHECK(c.runs == 3);
    CHECK(c.retry_kind == "failure");
    CHECK(c.last_error == "agent exited 1");
    CHECK(c.issue_state == "Todo");
    CHECK(c.updated_at == now);
    REQUIRE(rec->retries.size() == 1);
    CHECK(rec->retries[0].claim.issue_id == "A-2");
    CHECK(rec->retries[0].claim.due_at == now + 120s);
    CHECK(rec->retries[0].remaining == 100s);
    REQUIRE(rec->blocked.size() == 2);
    CHECK(rec->blocked[0].issue_id == "A-3");
    CHECK(rec->blocked[0].blocked_reason == "max_attempts reached: agent exited 1");
    CHECK(rec->blocked[0].blocked_at == now);
    CHECK_FALSE(rec->blocked[0].awaiting_approval);
    CHECK(rec->blocked[1].issue_id == "A-6"); // a human gate's wait and its feedback
    CHECK(rec->blocked[1].awaiting_approval);
    CHECK(rec->blocked[1].gate_feedback == "cover the empty list");
    REQUIRE(rec->outcomes.size() == 1);
    CHECK(rec->outcomes[0].issue_id == "A-1");
    CHECK(rec->outcomes[0].json == R"({"tests_passed":false})");
    CHECK(rec->outcomes[0].recorded_at == now + 1s);
    REQUIRE(rec->interrupted_runs.size() == 1);
    CHECK(rec->interrupted_runs[0].run_id == "r1");
    CHECK(rec->interrupted_runs[0].outcome == RunOutcome::interrupted);
    CHECK(rec->summary() ==
          "store resumed: 1 interrupted run(s), 1 interrupted claim(s) to retry, 1 pending retry, 2 blocked pair(s)");

    // Recovery is recorded: r1 is interrupted for good, a second recovery finds no running run.
    auto h = s->history({.issue_id = "A-1", .limit = 10});
    REQUIRE(h);
    REQUIRE(h->size() == 1);
    CHECK((*h)[0].outcome == RunOutcome::interrupted);
    CHECK((*h)[0].ended_at == now + 20s);
    CHECK((*h)[0].error == "interrupted: vik-host stopped while this run was running");
    auto again = s->recover(now + 200s);
    REQUIRE(again);
    CHECK(again->interrupted_runs.empty());
    CHECK(again->retries[0].remaining == 0ms); // already due
}

void check_history_and_stats(Store &s_) {
    auto *s = &s_;

    auto a = finished(run("a", "I-1", "plan", 1'000), RunOutcome::succeeded, 11'000, 100, 10, 50, 0.5);
    auto b = finished(run("b", "I-1", "code", 2'000), RunOutcome::failed, 4'000, 200, 20, 0, std::nullopt);
    auto c = finished(run("c", "I-2", "plan", 3'000), RunOutcome::cancelled, 3'500, 1, 2, 3, 0.25);
    c.agent = "claude";
    auto d = finished(run("d", "I-2", "plan", 4'000), RunOutcome::interrupted, 4'000, 0, 0, 0, std::nullopt);
    for (auto &r : {a, b, c, d})
        s->record_run(r);
    REQUIRE(s->flush(5s));

    auto all = s->history({});
    REQUIRE(all);
    REQUIRE(all->size() == 4);
    check_run((*all)[0], d);
    check_run((*all)[1], c);
    check_run((*all)[2], b);
    check_run((*all)[3], a);
    auto one = s->history({.issue_id = "I-1", .limit = 1});
    REQUIRE(one);
    REQUIRE(one->size() == 1);
    check_run((*one)[0], b);

    auto st = s->stats();
    REQUIRE(st);
    auto &o = st->overall;
    CHECK(o.runs == 4);
    CHECK(o.successes == 1);
    CHECK(o.failures == 2); // failed + interrupted; cancelled is neither
    CHECK(o.tokens_in == 301);
    CHECK(o.tokens_out == 32);
    CHECK(o.tokens_cache_read == 53);
    CHECK(o.cost_usd == Approx(0.75));
    CHECK(o.seconds == Approx(10 + 2 + 0.5));
    REQUIRE(st->per_issue.size() == 2);
    CHECK(st->per_issue[0].key == "I-1");
    CHECK(st->per_issue[0].totals.runs == 2);
    CHECK(st->per_issue[0].totals.successes == 1);
    CHECK(st->per_issue[0].totals.failures == 1);
    CHECK(st->per_issue[0].totals.tokens_in == 300);
    CHECK(st->per_issue[0].totals.cost_usd == Approx(0.5));
    CHECK(st->per_issue[0].totals.seconds == Approx(12));
    CHECK(st->per_issue[1].key == "I-2");
    CHECK(st->per_issue[1].totals.runs == 2);
    CHECK(st->per_issue[1].totals.failures == 1);
    CHECK(st->per_issue[1].totals.tokens_cache_read == 3);
    REQUIRE(st->per_stage.size() == 2);
    CHECK(st->per_stage[0].key == "code");
    CHECK(st->per_stage[0].totals.runs == 1);
    CHECK(st->per_stage[1].key == "plan");
    CHECK(st->per_stage[1].totals.runs == 3);
    CHECK(st->per_stage[1].totals.tokens_out == 12);
    REQUIRE(st->per_agent.size() == 2);
    CHECK(st->per_agent[0].key == "claude");
    CHECK(st->per_agent[0].totals.runs == 1);
    CHECK(st->per_agent[0].totals.cost_usd == Approx(0.25));
    CHECK(st->per_agent[1].key == "codex");
    CHECK(st->per_agent[1].totals.runs == 3);
}

} // namespace vik::test
