// The PostgreSQL store against a real PostgreSQL 15 started by the test (tests/support/pg_server):
// the same contract as the SQLite store, one database shared by several workflows, a database
// restart in the middle of writes losing nothing, the refusals (unreachable server, a schema
// from a newer vik-host) saying what to do, and the leases that let several hosts share a workflow.
#include "store/postgres_store.hpp"
#include "store/store_contract.hpp"
#include "support/pg_server.hpp"
#include "support/test_support.hpp"

#include "store/libpq_api.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <thread>

using namespace vik::store;
using namespace std::chrono_literals;
using vik::test::at_ms;
using vik::test::claim;
using vik::test::PgServer;
using vik::test::run;

#define VIK_NEEDS_POSTGRES()                                                                                                     \
    if (auto why = PgServer::unavailable()) {                                                                                    \
        WARN("skipped: " << *why);                                                                                               \
        return;                                                                                                                  \
    }

namespace {

PostgresOptions quick_options() {
    PostgresOptions o;
    o.queue.flush_interval = 5ms;
    o.queue.retry_min = 20ms;
    o.queue.retry_max = 200ms;
    o.queue.close_timeout = 5000ms;
    o.connect_timeout = 2s;
    return o;
}

std::unique_ptr<PostgresStore> open_ok(const PgServer &pg, const std::string &workflow) {
    auto s = PostgresStore::open(pg.conninfo(), workflow, quick_options());
    if (!s) FAIL(s.error().message);
    return std::move(*s);
}

// A connection of the test's own, through the libpq the store loads (the tests do not link it:
// libpq mapped at start and loaded again by the store would give LeakSanitizer a false report).
PGconn *connect(const PgServer &pg) {
    auto api = load_libpq();
    if (!api) FAIL(api.error());
    std::string conninfo = pg.conninfo();
    const char *keys[] = {"dbname", nullptr};
    const char *values[] = {conninfo.c_str(), nullptr};
    return pq().PQconnectdbParams(keys, values, 1);
}

void sql(const PgServer &pg, const std::string &statement) {
    PGconn *c = connect(pg);
    REQUIRE(pq().PQstatus(c) == CONNECTION_OK);
    PGresult *r = pq().PQexec(c, statement.c_str());
    INFO(pq().PQerrorMessage(c));
    CHECK(pq().PQresultStatus(r) == PGRES_COMMAND_OK);
    pq().PQclear(r);
    pq().PQfinish(c);
}

} // namespace

TEST_CASE("postgres store: every record kind round-trips, and workflows sharing a database see only their own",
          "[store][postgres]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    vik::test::check_round_trip([&] { return std::unique_ptr<Store>(open_ok(pg, "alpha")); });
    // A second workflow in the same database: none of alpha's records, and its own stay apart.
    auto beta = open_ok(pg, "beta");
    auto claims = beta->claims();
    REQUIRE(claims);
    CHECK(claims->empty());
    auto h = beta->history({});
    REQUIRE(h);
    CHECK(h->empty());
    beta->claim_running(claim("A-1", "plan"), at_ms(1'000));
    REQUIRE(beta->flush(5s));
    auto alpha = open_ok(pg, "alpha");
    auto alpha_claims = alpha->claims();
    REQUIRE(alpha_claims);
    for (const auto &c : *alpha_claims) // alpha's A-1/plan was interrupted and kept; beta's is beta's
        CHECK(c.updated_at != at_ms(1'000));
    CHECK_THAT(alpha->location(), Catch::Contains("workflow alpha"));
    CHECK_THAT(alpha->location(), Catch::Contains("dbname=postgres"));
}

TEST_CASE("postgres store: history is newest first and per issue, stats total per issue, stage and agent", "[store][postgres]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto s = open_ok(pg, "stats");
    vik::test::check_history_and_stats(*s);
}

TEST_CASE("postgres store: a database restart in the middle of writes loses nothing", "[store][postgres]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto s = open_ok(pg, "restart");
    for (int i = 0; i < 50; ++i)
        s->record_run(run("before" + std::to_string(i), "R-1", "plan", i));
    REQUIRE(s->flush(5s));
    pg.stop();
    for (int i = 0; i < 50; ++i)
        s->record_run(run("during" + std::to_string(i), "R-1", "plan", 1'000 + i));
    // The writer cannot reach the database: the records wait and the failure is reported.
    REQUIRE(vik::test::wait_until([&] { return s->write_error().has_value(); }, 10s));
    CHECK_THAT(*s->write_error(), Catch::Contains("workflow restart"));
    CHECK_FALSE(s->flush(100ms));
    pg.start();
    REQUIRE(s->flush(20s)); // reconnected and retried
    CHECK_FALSE(s->write_error());
    auto h = s->history({.issue_id = "R-1", .limit = 1000});
    REQUIRE(h); // the reader reconnects too
    CHECK(h->size() == 100);
}

TEST_CASE("postgres store: an unreachable server and a newer schema are refused with what to do", "[store][postgres]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto gone = PostgresStore::open("host=/nonexistent-vik-dir port=5432 user=vik dbname=vik", "w", quick_options());
    REQUIRE_FALSE(gone);
    CHECK(gone.error().kind == StoreError::Kind::io);
    CHECK_THAT(gone.error().message, Catch::Contains("host=/nonexistent-vik-dir port=5432 dbname=vik"));
    CHECK_THAT(gone.error().message, Catch::Contains("cannot connect"));
    CHECK_THAT(gone.error().message, Catch::Contains("store.url_env"));

    // A malformed URL: libpq would quote the password in its message; the store never does.
    auto malformed = PostgresStore::open("postgresql://vik:s3cr%zzet@localhost/vik", "w", quick_options());
    REQUIRE_FALSE(malformed);
    CHECK_THAT(malformed.error().message, Catch::Contains("connection string is malformed"));
    CHECK_THAT(malformed.error().message, !Catch::Contains("s3cr"));

    auto empty_id = PostgresStore::open(pg.conninfo(), "", quick_options());
    REQUIRE_FALSE(empty_id);
    CHECK_THAT(empty_id.error().message, Catch::Contains("needs a workflow id"));

    { open_ok(pg, "w"); } // creates the schema
    sql(pg, "UPDATE vik_schema SET version = 99");
    auto newer = PostgresStore::open(pg.conninfo(), "w", quick_options());
    REQUIRE_FALSE(newer);
    CHECK(newer.error().kind == StoreError::Kind::newer_schema);
    CHECK_THAT(newer.error().message, Catch::Contains("vik schema version 99, newer than this vik-host knows (schema version " +
                                                      std::to_string(PostgresStore::schema_version()) + ")"));
}

namespace {

// A running host's store, after the recovery a host makes at start (`resumed`: what it took).
std::unique_ptr<PostgresStore> open_host(const PgServer &pg, const std::string &host_id, std::chrono::milliseconds ttl = 1500ms,
                                         Recovery *resumed = nullptr) {
    auto o = quick_options();
    o.host_id = host_id;
    o.address = "test-machine";
    o.lease_ttl = ttl;
    auto s = PostgresStore::open(pg.conninfo(), "shop", o);
    if (!s) FAIL(s.error().message);
    auto r = (*s)->recover(std::chrono::system_clock::now());
    if (!r) FAIL(r.error().message);
    if (resumed) *resumed = std::move(*r);
    return std::move(*s);
}

ClaimRecord running_claim(const std::string &issue, const std::string &stage) {
    ClaimRecord c = claim(issue, stage);
    c.state = ClaimState::running;
    c.runs = 1;
    return c;
}

} // namespace

TEST_CASE("postgres leases: a pair is leased to one host, and a host that stopped renewing is fenced out and its work taken over",
          "[store][postgres][leases]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto a = open_host(pg, "host-a");
    auto b = open_host(pg, "host-b", 10s); // host-b's own lease outlives the whole test
    REQUIRE(a->leases() == a.get());
    const PairKey pair{"X-1", "plan"};

    auto got = a->acquire({{pair, "todo"}, {{"X-2", "plan"}, "todo"}}, {});
    REQUIRE(got);
    CHECK(got->size() == 2);
    auto none = b->acquire({{pair, "todo"}}, {});
    REQUIRE(none);
    CHECK(none->empty()); // host-a holds it
    a->release_unused({{"X-2", "plan"}});
    auto freed = b->acquire({{{"X-2", "plan"}, "todo"}}, {});
    REQUIRE(freed);
    CHECK(freed->size() == 1); // given back, so free again

    a->record_claim(running_claim("X-1", "plan"));
    a->record_run(run("r1", "X-1", "plan", 1));
    a->record_outcome(OutcomeRecord{"X-1", "plan", R"({"verdict":"ok"})", at_ms(10), 0});
    REQUIRE(a->flush(5s));
    CHECK(a->holds(pair));
    CHECK_FALSE(b->holds(pair));

    // host-a stops renewing; host-b takes host-a's lease over once it expired.
    std::this_thread::sleep_for(1700ms);
    auto taken = b->take_over(std::chrono::system_clock::now());
    REQUIRE(taken);
    REQUIRE(taken->interrupted_claims.size() == 1);
    CHECK(taken->interrupted_claims[0].issue_id == "X-1");
    REQUIRE(taken->interrupted_runs.size() == 1);
    CHECK(taken->interrupted_runs[0].run_id == "r1");
    REQUIRE(taken->outcomes.size() == 1); // the issue's structured outcome comes with it
    CHECK(taken->outcomes[0].json == R"({"verdict":"ok"})");
    CHECK(taken->interrupted_runs[0].outcome == RunOutcome::interrupted);
    CHECK(b->holds(pair));

    // host-a wakes up: its renewal says the pair is gone, and its late writes do not land.
    auto lost = a->renew(1);
    REQUIRE(lost);
    REQUIRE(lost->size() == 1);
    CHECK(lost->front() == pair);
    CHECK_FALSE(a->holds(pair));
    auto stale = run("r1", "X-1", "plan", 1);
    stale.outcome = RunOutcome::succeeded;
    stale.ended_at = at_ms(5000);
    a->record_run(stale);
    ClaimRecord blocked = running_claim("X-1", "plan");
    blocked.state = ClaimState::blocked;
    blocked.blocked_reason = "stale";
    a->record_claim(blocked);
    a->release_claim("X-1", "plan");
    REQUIRE(a->flush(5s));
    CHECK_FALSE(a->write_error()); // refused writes are dropped, not retried
    auto h = b->history({.issue_id = "X-1", .limit = 10});
    REQUIRE(h);
    REQUIRE(h->size() == 1);
    CHECK(h->front().outcome == RunOutcome::interrupted);
    auto claims = b->claims();
    REQUIRE(claims);
    REQUIRE(claims->size() == 1);
    CHECK(claims->front().state == ClaimState::running);

    // Operators see both hosts and who holds what.
    auto hosts = b->hosts();
    REQUIRE(hosts);
    REQUIRE(hosts->size() == 2);
    CHECK(hosts->at(0).host_id == "host-a");
    CHECK(hosts->at(0).running == 1);
    CHECK(hosts->at(1).address == "test-machine");
    auto leases = b->lease_list();
    REQUIRE(leases);
    REQUIRE(leases->size() == 2);
    CHECK(leases->at(0).issue_id == "X-1");
    CHECK(leases->at(0).host_id == "host-b");
    CHECK(leases->at(0).expires_in > 0);

    // host-b finishes the pair: the claim and its lease go together.
    b->release_claim("X-1", "plan");
    REQUIRE(b->flush(5s));
    auto after = b->lease_list();
    REQUIRE(after);
    CHECK(after->size() == 1); // X-2's, taken above
    CHECK(b->claims()->empty());
    auto again = a->acquire({{pair, "todo"}}, {});
    REQUIRE(again);
    CHECK(again->size() == 1);
}

TEST_CASE("postgres leases: a lease row locked by a transaction that does not end does not hold up the others' renewals",
          "[store][postgres][leases]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto a = open_host(pg, "host-a", 1200ms);
    auto b = open_host(pg, "host-b", 1200ms);
    REQUIRE(a->acquire({{{"L-1", "plan"}, "todo"}}, {}).value_or(std::vector<PairKey>{}).size() == 1);
    a->record_claim(running_claim("L-1", "plan"));
    REQUIRE(a->flush(5s));
    // As a host paused inside one of its write transactions: the lease row stays share-locked.
    PGconn *paused = connect(pg);
    REQUIRE(pq().PQstatus(paused) == CONNECTION_OK);
    for (const char *statement : {"BEGIN", "SELECT 1 FROM vik_leases WHERE issue_id = 'L-1' FOR SHARE"}) {
        PGresult *r = pq().PQexec(paused, statement);
        CHECK((pq().PQresultStatus(r) == PGRES_COMMAND_OK || pq().PQresultStatus(r) == PGRES_TUPLES_OK));
        pq().PQclear(r);
    }
    std::this_thread::sleep_for(1500ms); // host-a's lease expired
    // host-b's take-over gives up on the locked row instead of waiting for it, and its renewals
    // (same connection) go on.
    auto blocked = b->take_over(std::chrono::system_clock::now());
    REQUIRE_FALSE(blocked);
    CHECK_THAT(blocked.error().message, Catch::Contains("lock timeout"));
    CHECK(b->renew(0));
    pq().PQfinish(paused); // as the server ends a host's session idle in a transaction (idle_in_transaction_session_timeout)
    auto taken = b->take_over(std::chrono::system_clock::now());
    REQUIRE(taken);
    REQUIRE(taken->interrupted_claims.size() == 1);
    CHECK(taken->interrupted_claims.front().issue_id == "L-1");
    CHECK(b->holds({"L-1", "plan"}));
}

TEST_CASE("postgres leases: each due time of a schedule is fired by the first host to record it", "[store][postgres][leases]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto a = open_host(pg, "host-a", 10s);
    auto b = open_host(pg, "host-b", 10s);
    const WallTime due = std::chrono::system_clock::from_time_t(1'800'000'000);
    CHECK(a->claim_firing("nightly", due).value_or(false));
    CHECK_FALSE(b->claim_firing("nightly", due).value_or(true));       // recorded by host-a: not fired twice
    CHECK_FALSE(a->claim_firing("nightly", due - 24h).value_or(true)); // an older due time never wins
    CHECK(b->claim_firing("nightly", due + 24h).value_or(false));
    CHECK(b->claim_firing("weekly", due).value_or(false)); // schedules are independent
    auto r = b->recover(std::chrono::system_clock::now());
    REQUIRE(r);
    std::map<std::string, WallTime> fired;
    for (const auto &s : r->schedules)
        fired[s.name] = s.last_fired;
    CHECK(fired["nightly"] == due + 24h);
    CHECK(fired["weekly"] == due);
}

TEST_CASE("postgres leases: per-state limits count the issues at work on every host", "[store][postgres][leases]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto a = open_host(pg, "host-a");
    auto b = open_host(pg, "host-b");
    const std::map<std::string, int64_t> limits{{"todo", 2}};
    auto first = a->acquire({{{"X-1", "plan"}, "todo"}, {{"X-1", "build"}, "todo"}, {{"X-2", "plan"}, "todo"}}, limits);
    REQUIRE(first);
    CHECK(first->size() == 3); // two issues: X-1's second stage takes no second place
    auto full = b->acquire({{{"X-3", "plan"}, "todo"}, {{"X-4", "plan"}, "review"}}, limits);
    REQUIRE(full);
    REQUIRE(full->size() == 1); // todo is full on host-a; review has no limit
    CHECK(full->front() == PairKey{"X-4", "plan"});
    // A claim that waits (blocked, queued) is not at work: its place is free.
    ClaimRecord waiting = running_claim("X-2", "plan");
    waiting.state = ClaimState::blocked;
    a->record_claim(waiting);
    REQUIRE(a->flush(5s));
    auto freed = b->acquire({{{"X-3", "plan"}, "todo"}}, limits);
    REQUIRE(freed);
    CHECK(freed->size() == 1);
}

TEST_CASE("postgres leases: a queued claim takes its place in the per-state count again before it runs",
          "[store][postgres][leases]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto a = open_host(pg, "host-a", 10s);
    auto b = open_host(pg, "host-b", 10s);
    const std::map<std::string, int64_t> limits{{"todo", 1}};
    REQUIRE(a->acquire({{{"Q-1", "plan"}, "todo"}}, limits).value_or(std::vector<PairKey>{}).size() == 1);
    ClaimRecord queued = claim("Q-1", "plan");
    queued.state = ClaimState::retry_queued;
    a->record_claim(queued);
    REQUIRE(a->flush(5s));
    // While Q-1 waits for its retry it is not at work: host-b may fill the state's one place. Q-1,
    // asked for first but held by host-a, does not take that place.
    auto filled = b->acquire({{{"Q-1", "plan"}, "todo"}, {{"Q-2", "plan"}, "todo"}}, limits);
    REQUIRE(filled);
    REQUIRE(filled->size() == 1);
    CHECK(filled->front() == PairKey{"Q-2", "plan"});
    b->record_claim(running_claim("Q-2", "plan"));
    REQUIRE(b->flush(5s));
    // Q-1's retry fires: the place is taken on host-b, so it waits.
    auto full = a->resume({{"Q-1", "plan"}, "todo"}, limits);
    REQUIRE(full);
    CHECK_FALSE(*full);
    // A state without a limit asks nothing; a pair this host does not hold may not run.
    CHECK(a->resume({{"Q-1", "plan"}, "review"}, limits).value_or(false));
    CHECK_FALSE(b->resume({{"Q-1", "plan"}, "todo"}, limits).value_or(true));
    // Q-2 fails and waits in turn: Q-1 takes the place, and from then on it counts as at work.
    ClaimRecord waiting = running_claim("Q-2", "plan");
    waiting.state = ClaimState::retry_queued;
    b->record_claim(waiting);
    REQUIRE(b->flush(5s));
    auto room = a->resume({{"Q-1", "plan"}, "todo"}, limits);
    REQUIRE(room);
    CHECK(*room);
    auto after = b->resume({{"Q-2", "plan"}, "todo"}, limits);
    REQUIRE(after);
    CHECK_FALSE(*after);
    CHECK(b->acquire({{{"Q-3", "plan"}, "todo"}}, limits).value_or(std::vector<PairKey>{{"x", "y"}}).empty());
}

TEST_CASE("postgres leases: claims no lease covers are taken over, and a host id in use elsewhere is refused",
          "[store][postgres][leases]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    {
        auto single = open_ok(pg, "shop"); // a store without leases (as before several hosts)
        single->record_claim(running_claim("O-1", "plan"));
        ClaimRecord queued = claim("O-2", "plan");
        queued.state = ClaimState::retry_queued;
        queued.due_at = std::chrono::system_clock::now() + 60s;
        single->record_claim(queued);
        REQUIRE(single->flush(5s));
    }
    Recovery resumed;
    auto a = open_host(pg, "host-a", 1500ms, &resumed);
    CHECK(resumed.interrupted_claims.size() == 1);
    REQUIRE(resumed.retries.size() == 1);
    CHECK(resumed.retries[0].claim.issue_id == "O-2");
    CHECK(a->holds({"O-1", "plan"}));
    CHECK(a->holds({"O-2", "plan"}));

    // A second process with the same host id while host-a's heartbeat is fresh: it waits one
    // lease time, then is refused, naming the id.
    std::atomic<bool> beating{true};
    std::thread heart([&] {
        while (beating) {
            (void)a->renew(0);
            std::this_thread::sleep_for(200ms);
        }
    });
    auto o = quick_options();
    o.host_id = "host-a";
    o.lease_ttl = 1500ms;
    auto twin = PostgresStore::open(pg.conninfo(), "shop", o);
    beating = false;
    heart.join();
    REQUIRE_FALSE(twin);
    CHECK(twin.error().kind == StoreError::Kind::locked);
    CHECK_THAT(twin.error().message, Catch::Contains("another vik-host runs this workflow with host id 'host-a'"));

    // An orderly stop lets the leases lapse at once: another host takes the work over without
    // waiting a lease time.
    a.reset();
    Recovery taken;
    auto b = open_host(pg, "host-b", 60s, &taken); // its start-up take-over
    CHECK(taken.interrupted_claims.size() + taken.retries.size() == 2);
}

TEST_CASE("postgres store: an agent's text that is not UTF-8 is stored cleaned, and later writes go on", "[store][postgres]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto s = open_ok(pg, "bytes");
    auto bad = run("b1", "U-1", "plan", 1);
    bad.error = std::string("stderr tail cut mid-character: \xe2\x94") + std::string(1, '\0') + "end";
    s->record_run(bad);
    s->record_run(run("b2", "U-1", "plan", 2));
    REQUIRE(s->flush(5s)); // not retried forever
    CHECK_FALSE(s->write_error());
    auto h = s->history({.issue_id = "U-1", .limit = 10});
    REQUIRE(h);
    REQUIRE(h->size() == 2);
    CHECK(h->back().error.find('\0') == std::string::npos);
    CHECK_THAT(h->back().error, Catch::StartsWith("stderr tail cut mid-character: "));
    CHECK_THAT(h->back().error, Catch::EndsWith("end"));
}

TEST_CASE("postgres leases: a database restart shorter than the lease time keeps the leases and the writes",
          "[store][postgres][leases]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto a = open_host(pg, "host-a", 20s);
    REQUIRE(a->acquire({{{"R-1", "plan"}, "todo"}}, {}).value_or(std::vector<PairKey>{}).size() == 1);
    pg.stop();
    CHECK_FALSE(a->renew(1)); // the database is away: the renewal fails, the lease stays held here
    a->record_claim(running_claim("R-1", "plan"));
    a->record_run(run("during", "R-1", "plan", 1));
    pg.start();
    auto lost = a->renew(1);
    REQUIRE(lost);
    CHECK(lost->empty());
    REQUIRE(a->flush(20s)); // reconnected; the fenced writes land: the lease is still this host's
    auto h = a->history({.issue_id = "R-1", .limit = 10});
    REQUIRE(h);
    CHECK(h->size() == 1);
    CHECK(a->claims()->size() == 1);
}
