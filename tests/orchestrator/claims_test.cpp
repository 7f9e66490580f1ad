// The claim rules and dispatch order, deterministically (no timers, no processes).
#include "orchestrator/candidates.hpp"
#include "orchestrator/claims.hpp"

#include <catch2/catch.hpp>

using namespace vik::orchestrator;

namespace {
vik::workflow::SchedulingPolicy policy() { return {}; }
const PairKey k{"ENG-1", "plan"};
} // namespace

TEST_CASE("claims: failure backoff doubles from 10 s and is capped at 300 s", "[scheduling]") {
    auto p = policy();
    std::vector<double> got;
    for (int attempt = 1; attempt <= 8; ++attempt)
        got.push_back(ClaimTable::backoff_sec(p, attempt));
    CHECK(got == std::vector<double>{10, 20, 40, 80, 160, 300, 300, 300});
    p.retry_base_sec = 0.5;
    p.retry_max_backoff_sec = 3;
    CHECK(ClaimTable::backoff_sec(p, 1) == 0.5);
    CHECK(ClaimTable::backoff_sec(p, 4) == 3);
}

TEST_CASE("claims: a claimed pair is never unclaimed by intake, each state is explicit", "[scheduling]") {
    ClaimTable t(policy());
    CHECK_FALSE(t.claimed(k));
    t.start(k, "todo");
    REQUIRE(t.claimed(k));
    CHECK(t.find(k)->state == ClaimState::running);
    CHECK(t.find(k)->runs == 1);
    CHECK(t.find(k)->retry_kind == "first");
    auto d = t.failed(k, "boom").value();
    CHECK(d.kind == Decision::retry);
    CHECK(t.find(k)->state == ClaimState::retry_queued); // still claimed: intake skips it
    CHECK(t.claimed(k));
    t.release(k);
    CHECK_FALSE(t.claimed(k));
}

TEST_CASE("claims: a clean finish in the same state continues after the delay, then blocks", "[scheduling]") {
    auto p = policy();
    p.max_continuations = 2;
    ClaimTable t(p);
    t.start(k, "todo");
    auto d1 = t.completed(k, true).value();
    CHECK(d1.kind == Decision::retry);
    CHECK(d1.delay_sec == 1.0);
    CHECK(t.find(k)->retry_kind == "continuation");
    t.start(k, "todo");
    CHECK(t.find(k)->runs == 2);
    CHECK(t.completed(k, true).value().kind == Decision::retry);
    t.start(k, "todo");
    auto d3 = t.completed(k, true).value();
    CHECK(d3.kind == Decision::block);
    CHECK_THAT(d3.reason, Catch::Contains("stage finished 3 time(s) in a row but the issue stayed in state 'todo'"));
    CHECK(t.find(k)->state == ClaimState::blocked);
}

TEST_CASE("claims: a clean finish after the issue moved on releases the claim", "[scheduling]") {
    ClaimTable t(policy());
    t.start(k, "todo");
    CHECK(t.completed(k, false).value().kind == Decision::release);
    CHECK_FALSE(t.claimed(k));
}

TEST_CASE("claims: failures retry with backoff up to the limit, then block with the last error", "[scheduling]") {
    ClaimTable t(policy()); // max_attempts 3
    t.start(k, "todo");
    auto d1 = t.failed(k, "exit 1").value();
    CHECK(d1.kind == Decision::retry);
    CHECK(d1.delay_sec == 10);
    CHECK(t.find(k)->retry_kind == "failure");
    CHECK(t.find(k)->last_error == "exit 1");
    t.start(k, "todo");
    auto d2 = t.failed(k, "exit 2").value();
    CHECK(d2.delay_sec == 20);
    t.start(k, "todo");
    auto d3 = t.failed(k, "stalled for 300000ms without agent activity").value();
    CHECK(d3.kind == Decision::block);
    CHECK_THAT(d3.reason, Catch::Contains("failed 3 time(s)"));
    CHECK_THAT(d3.reason, Catch::Contains("last error: stalled for 300000ms without agent activity"));
}

TEST_CASE("claims: a success resets the failure count", "[scheduling]") {
    ClaimTable t(policy());
    t.start(k, "todo");
    t.failed(k, "a").value();
    t.start(k, "todo");
    t.failed(k, "b").value();
    t.start(k, "todo");
    t.completed(k, true).value();
    t.start(k, "todo");
    CHECK(t.failed(k, "c").value().delay_sec == 10);
}

TEST_CASE("claims: only the newest timer token of a queued claim may fire", "[scheduling]") {
    ClaimTable t(policy());
    t.start(k, "todo");
    auto first = t.failed(k, "x").value().token;
    CHECK(t.token_current(k, first));
    auto second = t.requeue_no_slot(k).value();
    CHECK(second.reason == "no available orchestrator slots");
    CHECK(second.delay_sec == 20);          // one attempt later
    CHECK_FALSE(t.token_current(k, first)); // the stale timer is ignored
    CHECK(t.token_current(k, second.token));
    t.start(k, "todo");
    CHECK_FALSE(t.token_current(k, second.token)); // running now: no timer may fire it
}

TEST_CASE("claims: a block is cleared by a state change or an operator retry", "[scheduling]") {
    ClaimTable t(policy());
    t.start(k, "todo");
    t.block(k, "stuck");
    CHECK(t.clear_blocks_on_state_change("ENG-1", "todo") == 0);
    CHECK(t.claimed(k));
    CHECK(t.clear_blocks_on_state_change("ENG-1", "review") == 1);
    CHECK_FALSE(t.claimed(k));
    t.start(k, "todo");
    t.failed(k, "boom");
    t.block(k, "stuck");
    t.start({"ENG-1", "other"}, "todo"); // running claims are left alone by an operator retry
    auto queued = t.retry_now("ENG-1", "use the staging database");
    REQUIRE(queued.size() == 1);
    CHECK(queued[0].first == k);
    CHECK(queued[0].second.kind == Decision::retry);
    CHECK(queued[0].second.delay_sec == 0);
    CHECK(t.token_current(k, queued[0].second.token));
    const Claim *c = t.find(k);
    REQUIRE(c);
    CHECK(c->state == ClaimState::retry_queued);
    CHECK(c->retry_kind == "operator");
    CHECK(c->failures == 0);
    CHECK(c->operator_message == "use the staging database");
    CHECK(t.find({"ENG-1", "other"})->state == ClaimState::running);
    CHECK(t.retry_now("NOPE-1", "").empty());
}

TEST_CASE("claims: a parked pair keeps its conversation, the operator's answer reaches one run", "[scheduling]") {
    ClaimTable t(policy());
    t.start(k, "todo");
    t.note_conversation(k, ConversationUse{"bot", "conv-1", false, true});
    REQUIRE(t.completed(k, true)->kind == Decision::retry); // a continuation
    t.start(k, "todo");
    t.note_conversation(k, ConversationUse{"bot", "conv-1", true, true});
    auto d = t.parked(k, "which database?");
    REQUIRE(d);
    CHECK(d->kind == Decision::block);
    CHECK(d->reason == "input required: which database?");
    const Claim *c = t.find(k);
    CHECK(c->state == ClaimState::blocked);
    CHECK(c->question == "which database?");
    CHECK(c->conversation_id == "conv-1");
    CHECK(c->conversation_turns == 2);
    t.retry_now("ENG-1", "staging");
    t.start(k, "todo");
    CHECK(t.find(k)->operator_message == "staging");
    CHECK(t.find(k)->question.empty());
    // A run whose agent never got the prompt (its session did not start) changes nothing.
    t.note_conversation(k, ConversationUse{});
    CHECK(t.find(k)->operator_message == "staging");
    CHECK(t.find(k)->conversation_id == "conv-1");
    CHECK(t.find(k)->conversation_turns == 2);
    t.note_conversation(k, ConversationUse{"bot", "conv-1", true, true});
    CHECK(t.find(k)->operator_message.empty()); // delivered once
    CHECK(t.find(k)->conversation_turns == 3);
    // A fresh conversation starts the count again; a run that could not resume forgets it.
    t.note_conversation(k, ConversationUse{"bot", "conv-2", false, true});
    CHECK(t.find(k)->conversation_turns == 1);
    auto r = t.resume_failed(k, "gone");
    REQUIRE(r);
    CHECK(r->kind == Decision::retry);
    CHECK(r->delay_sec == 0);
    CHECK(t.find(k)->conversation_id.empty());
    CHECK(t.find(k)->failures == 0);
}

TEST_CASE("claims: a failure while rate limited waits for the reset, never less than the backoff", "[scheduling]") {
    ClaimTable t(policy());
    t.start(k, "todo");
    auto d = t.failed(k, "429", 120);
    REQUIRE(d);
    CHECK(d->delay_sec == 120);
    t.start(k, "todo");
    auto small = t.failed(k, "429", 0.001);
    REQUIRE(small);
    CHECK(small->delay_sec == ClaimTable::backoff_sec(t.policy(), 2));
}

TEST_CASE("claims: a transition on a released claim is an error, never a throw", "[scheduling]") {
    ClaimTable t(policy());
    t.start(k, "todo");
    t.release_issue("ENG-1"); // e.g. terminal cleanup while the stage was finishing
    auto c = t.completed(k, true);
    REQUIRE_FALSE(c);
    CHECK(c.error() == "no claim for ENG-1/plan");
    CHECK_FALSE(t.failed(k, "boom"));
    CHECK_FALSE(t.requeue_no_slot(k));
    CHECK_FALSE(t.claimed(k)); // nothing was created by asking
}

TEST_CASE("claims: release_idle keeps running claims and drops queued and blocked ones", "[scheduling]") {
    ClaimTable t(policy());
    const PairKey other{"ENG-1", "review"}, queued{"ENG-1", "test"}, elsewhere{"ENG-2", "plan"};
    t.start(k, "todo");
    t.block(other, "stuck", std::string("todo"));
    t.start(queued, "todo");
    REQUIRE(t.failed(queued, "x"));
    t.start(elsewhere, "todo");
    CHECK(t.release_idle("ENG-1") == 2);
    CHECK(t.claimed(k));
    CHECK_FALSE(t.claimed(other));
    CHECK_FALSE(t.claimed(queued));
    CHECK(t.has_issue("ENG-1"));
    CHECK(t.has_issue("ENG-2"));
    CHECK_FALSE(t.has_issue("ENG-"));
    t.release(k);
    CHECK_FALSE(t.has_issue("ENG-1"));
}

TEST_CASE("claims: a block created with the issue's state is cleared only when that state changes", "[scheduling]") {
    ClaimTable t(policy());
    t.block(k, "internal error", std::string("todo"));
    CHECK(t.find(k)->state == ClaimState::blocked);
    CHECK(t.clear_blocks_on_state_change("ENG-1", "todo") == 0);
    CHECK(t.clear_blocks_on_state_change("ENG-1", "done") == 1);
}

TEST_CASE("candidates: priority first, then age, then id", "[scheduling]") {
    std::vector<Issue> issues(5);
    issues[0].id = "E";
    issues[1].id = "D";
    issues[1].priority = 2;
    issues[2].id = "C";
    issues[2].priority = 1;
    issues[2].created_at = "2026-02-01T00:00:00Z";
    issues[3].id = "B";
    issues[3].priority = 1;
    issues[3].created_at = "2026-01-01T00:00:00Z";
    issues[4].id = "A";
    std::vector<std::string> order;
    for (auto *i : order_candidates(issues))
        order.push_back(i->id);
    CHECK(order == std::vector<std::string>{"B", "C", "D", "A", "E"});
}

TEST_CASE("candidates: an issue blocked by an open issue waits", "[scheduling]") {
    Issue i;
    i.id = "X";
    i.blocked_by = {"Y"};
    CHECK(waits_on_blocker(i, {{"Y", "todo"}}, {"done"}));
    CHECK_FALSE(waits_on_blocker(i, {{"Y", "done"}}, {"done"}));
    CHECK_FALSE(waits_on_blocker(i, {}, {"done"})); // not visible: closed
}

TEST_CASE("candidates: per-state limits count running issues by their current state", "[scheduling]") {
    auto p = policy();
    p.max_concurrent_by_state = {{"todo", 1}, {"review", 2}};
    CHECK(state_has_room(p, "todo", {}));
    CHECK_FALSE(state_has_room(p, "todo", {"todo"}));
    CHECK(state_has_room(p, "review", {"todo", "review"}));
    CHECK_FALSE(state_has_room(p, "review", {"review", "review"}));
    CHECK(state_has_room(p, "other", {"other", "other", "other"}));
}

TEST_CASE("claims: on_fail block blocks at the first failure, a route waits for its issue and keeps its count",
          "[scheduling][routing]") {
    using vik::workflow::FailurePolicy;
    SECTION("block") {
        ClaimTable t(policy());
        t.start(k, "todo");
        auto d = t.failed(k, "tests failed", 0, FailurePolicy{FailurePolicy::block, "", 1}).value();
        CHECK(d.kind == Decision::block);
        CHECK(d.reason == "failed 1 time(s) (on_fail: block); last error: tests failed");
        CHECK(t.find(k)->state == ClaimState::blocked);
        CHECK_FALSE(t.dispatchable(k));
    }
    SECTION("route after two attempts, then back, then blocked past max_routes") {
        auto p = policy();
        p.max_routes = 1;
        ClaimTable t(p);
        FailurePolicy to_fix{FailurePolicy::route, "fix", 2};
        t.start(k, "testing");
        auto first = t.failed(k, "boom 1", 0, to_fix).value();
        CHECK(first.kind == Decision::retry); // retried until after_attempts
        t.start(k, "testing");
        auto d = t.failed(k, "boom 2", 0, to_fix).value();
        REQUIRE(d.kind == Decision::route);
        CHECK(d.target == "fix");
        CHECK(d.reason == "boom 2");
        const Claim &c = *t.find(k);
        CHECK(c.state == ClaimState::blocked);
        CHECK(c.last_error == "failed 2 time(s); routed to stage 'fix' (route 1 of 1); last error: boom 2");
        CHECK(c.routes == 1);
        CHECK(c.route_reason == "boom 2");
        CHECK(c.routed_to == "fix");
        // Until the tracker took the new state the pair is not dispatched again, but a pull that
        // saw the new state first does not clear it (the route and its count stay).
        CHECK(c.route_pending);
        CHECK_FALSE(t.dispatchable(k));
        CHECK(t.clear_blocks_on_state_change("ENG-1", "fixing") == 0);
        REQUIRE(t.routed(k));
        CHECK_FALSE(t.routed(k)); // once
        CHECK(t.dispatchable(k));
        auto from = t.routed_to("ENG-1", "fix");
        REQUIRE(from.has_value());
        CHECK(from->first == k);
        CHECK(from->second.route_reason == "boom 2");
        // The issue left on purpose: the state change does not clear the routed claim.
        CHECK(t.clear_blocks_on_state_change("ENG-1", "fixing") == 0);
        CHECK(t.claimed(k));
        // Back in its state: a first run, failures reset, the route count kept.
        const Claim &back = t.start(k, "testing");
        CHECK(back.retry_kind == "first");
        CHECK(back.failures == 0);
        CHECK(back.routes == 1);
        CHECK(back.routed_to.empty());
        CHECK(t.failed(k, "boom 3", 0, to_fix).value().kind == Decision::retry);
        t.start(k, "testing");
        auto last = t.failed(k, "boom 4", 0, to_fix).value();
        CHECK(last.kind == Decision::block);
        CHECK(last.reason == "failed 2 time(s) after 1 route(s) to stage 'fix' (scheduling.max_routes = 1); last error: boom 4");
        // An operator's retry starts the count again.
        auto queued = t.retry_now("ENG-1", "");
        REQUIRE(queued.size() == 1);
        CHECK(t.find(k)->routes == 0);
    }
    SECTION("a failed route write, and a block over a route, leave an ordinary block") {
        ClaimTable t(policy());
        FailurePolicy to_fix{FailurePolicy::route, "fix", 1};
        t.start(k, "testing");
        REQUIRE(t.failed(k, "boom", 0, to_fix).value().kind == Decision::route);
        t.route_failed(k, "could not set the state");
        CHECK(t.find(k)->routes == 0); // not counted
        CHECK(t.find(k)->routed_to.empty());
        CHECK(t.find(k)->last_error == "could not set the state");
        CHECK_FALSE(t.dispatchable(k));
        CHECK(t.clear_blocks_on_state_change("ENG-1", "other") == 1); // an ordinary block again
        t.start(k, "testing");
        REQUIRE(t.failed(k, "boom", 0, to_fix).value().kind == Decision::route);
        REQUIRE(t.routed(k));
        t.block(k, "internal error: x"); // a fault over a routed claim
        CHECK_FALSE(t.dispatchable(k));
        CHECK(t.find(k)->routed_to.empty());
    }
    SECTION("a rate-limited failure is never routed") {
        ClaimTable t(policy());
        t.start(k, "testing");
        auto d = t.failed(k, "429", 120, FailurePolicy{FailurePolicy::route, "fix", 1}).value();
        CHECK(d.kind == Decision::retry);
        CHECK(d.delay_sec == 120);
        CHECK(t.find(k)->routes == 0);
    }
}

TEST_CASE("claims: a pair awaiting approval holds through a state change and an operator retry until a verdict",
          "[scheduling][gates]") {
    ClaimTable t(policy());
    t.start(k, "todo");
    auto waiting = t.await_approval(k);
    REQUIRE(waiting.has_value());
    CHECK(waiting->kind == Decision::block);
    REQUIRE(t.find(k)->awaiting_approval);
    CHECK(t.find(k)->state == ClaimState::blocked);
    CHECK(t.awaiting_approval("ENG-1") == std::vector<PairKey>{k});
    CHECK_FALSE(t.dispatchable(k));
    CHECK(t.clear_blocks_on_state_change("ENG-1", "review") == 0); // the agent moved it on: still waiting
    CHECK(t.retry_now("ENG-1", "go").empty());                     // a verdict answers a gate, not a retry
    CHECK(t.find(k)->operator_message.empty());

    SECTION("rejected: runs again at once with the feedback, no failure counted; delivered, the feedback goes") {
        auto d = t.rejected(k, "add a test");
        REQUIRE(d.has_value());
        CHECK(d->kind == Decision::retry);
        CHECK(d->delay_sec == 0);
        const Claim *c = t.find(k);
        CHECK(c->retry_kind == "rejected");
        CHECK(c->gate_feedback == "add a test");
        CHECK(c->failures == 0);
        CHECK_FALSE(c->awaiting_approval);
        CHECK(t.awaiting_approval("ENG-1").empty());
        CHECK_FALSE(t.rejected(k, "again").has_value()); // nothing awaits any more
        t.start(k, "todo");
        t.note_conversation(k, ConversationUse{"bot", "", false, true});
        CHECK(t.find(k)->gate_feedback.empty());
    }
    SECTION("approved: the run stands as a completed one would") {
        auto d = t.approved(k, false);
        REQUIRE(d.has_value());
        CHECK(d->kind == Decision::release);
        CHECK_FALSE(t.claimed(k));
    }
    SECTION("approved while the issue stayed: a continuation") {
        auto d = t.approved(k, true);
        REQUIRE(d.has_value());
        CHECK(d->kind == Decision::retry);
        CHECK(t.find(k)->retry_kind == "continuation");
    }
    SECTION("a block of its own replaces the wait") {
        t.block(k, "internal error");
        CHECK_FALSE(t.find(k)->awaiting_approval);
        CHECK_FALSE(t.approved(k, true).has_value());
    }
}
