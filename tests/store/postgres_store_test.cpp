// The PostgreSQL store against a real PostgreSQL 15 started by the test (tests/support/pg_server):
// the same contract as the SQLite store, one database shared by several workflows, a database
// restart in the middle of writes losing nothing, and the refusals (unreachable server, a schema
// from a newer vik-host) saying what to do.
#include "store/postgres_store.hpp"
#include "store/store_contract.hpp"
#include "support/pg_server.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <libpq-fe.h>

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

void sql(const PgServer &pg, const std::string &statement) {
    PGconn *c = PQconnectdb(pg.conninfo().c_str());
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, statement.c_str());
    INFO(PQerrorMessage(c));
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
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

TEST_CASE("postgres store: a second running host on the same workflow id is refused while the first runs", "[store][postgres]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto exclusive = quick_options();
    exclusive.exclusive = true;
    auto first = PostgresStore::open(pg.conninfo(), "shop", exclusive);
    REQUIRE(first);
    auto second = PostgresStore::open(pg.conninfo(), "shop", exclusive);
    REQUIRE_FALSE(second);
    CHECK(second.error().kind == StoreError::Kind::locked);
    CHECK_THAT(second.error().message, Catch::Contains("another vik-host runs this workflow on this database"));
    CHECK(PostgresStore::open(pg.conninfo(), "other", exclusive));      // another workflow id is another lock
    CHECK(PostgresStore::open(pg.conninfo(), "shop", quick_options())); // readers (history, stats) are not refused
    first->reset();
    CHECK(PostgresStore::open(pg.conninfo(), "shop", exclusive)); // the lock went with its host
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

TEST_CASE("postgres store: the running host's lock is taken again after a database restart", "[store][postgres]") {
    VIK_NEEDS_POSTGRES();
    PgServer pg;
    auto exclusive = quick_options();
    exclusive.exclusive = true;
    auto first = PostgresStore::open(pg.conninfo(), "shop", exclusive);
    REQUIRE(first);
    pg.stop();
    pg.start();
    (*first)->record_run(run("after-restart", "L-1", "plan", 1));
    REQUIRE((*first)->flush(20s)); // reconnected, and the lock is held again before writing
    auto second = PostgresStore::open(pg.conninfo(), "shop", exclusive);
    REQUIRE_FALSE(second);
    CHECK_THAT(second.error().message, Catch::Contains("another vik-host runs this workflow"));
}
