#include "store/sqlite_store.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <csignal>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace vik::store;
using namespace std::chrono_literals;

#define VIK_SKIP(why)                                                                                                            \
    do {                                                                                                                         \
        WARN("skipped: " << (why));                                                                                              \
        return;                                                                                                                  \
    } while (0)

namespace {

WallTime at_ms(int64_t ms) { return WallTime{std::chrono::milliseconds{ms}}; }

SqliteOptions quick_options() {
    SqliteOptions o;
    o.busy_timeout = 300ms;
    o.flush_interval = 5ms;
    o.retry_min = 10ms;
    o.retry_max = 50ms;
    o.close_timeout = 2000ms;
    return o;
}

std::unique_ptr<SqliteStore> open_ok(const std::filesystem::path &p, SqliteOptions o = quick_options()) {
    auto s = SqliteStore::open(p, o);
    if (!s) FAIL(s.error().message);
    return std::move(*s);
}

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

std::string read_all(const std::filesystem::path &p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

TEST_CASE("store: every record kind round-trips, claims as upserts and releases", "[store]") {
    vik::test::TempDir dir;
    auto path = dir / "state/vik.db";
    auto now = at_ms(1'700'000'000'000);
    {
        auto s = open_ok(path);
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
        REQUIRE(s->flush(2s));
        CHECK(s->pending() == 0);
        CHECK_FALSE(s->write_error());

        auto h = s->history({});
        REQUIRE(h);
        REQUIRE(h->size() == 2);
        check_run((*h)[0], r2); // newest first
        check_run((*h)[1], r1);
    }
    struct stat sb {};
    REQUIRE(::stat(path.c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
    REQUIRE(::stat(path.parent_path().c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0700);

    auto s = open_ok(path);
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

TEST_CASE("store: history is newest first and per issue, stats total per issue, stage and agent", "[store]") {
    vik::test::TempDir dir;
    auto s = open_ok(dir / "vik.db");
    auto a = finished(run("a", "I-1", "plan", 1'000), RunOutcome::succeeded, 11'000, 100, 10, 50, 0.5);
    auto b = finished(run("b", "I-1", "code", 2'000), RunOutcome::failed, 4'000, 200, 20, 0, std::nullopt);
    auto c = finished(run("c", "I-2", "plan", 3'000), RunOutcome::cancelled, 3'500, 1, 2, 3, 0.25);
    c.agent = "claude";
    auto d = finished(run("d", "I-2", "plan", 4'000), RunOutcome::interrupted, 4'000, 0, 0, 0, std::nullopt);
    for (auto &r : {a, b, c, d})
        s->record_run(r);
    REQUIRE(s->flush(2s));

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

TEST_CASE("store: records flushed before a SIGKILL survive it (WAL recovery on reopen)", "[store]") {
    vik::test::TempDir dir;
    auto path = dir / "vik.db";
    { open_ok(path); } // created before the fork
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(ready[0]);
        auto s = SqliteStore::open(path, quick_options());
        if (!s) ::_exit(2);
        (*s)->claim_retry_queued(claim("K-1", "code"), at_ms(5'000) + 60s, at_ms(5'000));
        (*s)->record_run(run("k1", "K-1", "code", 5'000));
        if (!(*s)->flush(5s)) ::_exit(3);
        (void)!::write(ready[1], "x", 1);
        for (;;)
            ::pause(); // killed here, the store still open
    }
    ::close(ready[1]);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    CHECK(std::filesystem::exists(path.string() + "-wal"));

    auto s = open_ok(path);
    auto rec = s->recover(at_ms(5'000) + 20s);
    REQUIRE(rec);
    REQUIRE(rec->retries.size() == 1);
    CHECK(rec->retries[0].claim.runs == 3);
    CHECK(rec->retries[0].remaining == 40s);
    REQUIRE(rec->interrupted_runs.size() == 1);
    CHECK(rec->interrupted_runs[0].run_id == "k1");
}

TEST_CASE("store: a corrupt file is refused with its path and what to do, and left as it is", "[store]") {
    vik::test::TempDir dir;
    SECTION("not a database at all") {
        auto path = dir / "vik.db";
        { std::ofstream(path) << std::string(8192, 'g'); }
        auto before = read_all(path);
        auto s = SqliteStore::open(path, quick_options());
        REQUIRE_FALSE(s);
        CHECK(s.error().kind == StoreError::Kind::corrupt);
        CHECK_THAT(s.error().message, Catch::Contains(path.string()) && Catch::Contains("corrupt") &&
                                          Catch::Contains("Move it aside") && Catch::Contains(".recover"));
        CHECK(read_all(path) == before); // never replaced by an empty database
    }
    SECTION("garbage over the pages after the header") {
        auto path = dir / "vik.db";
        {
            auto s = open_ok(path);
            for (int i = 0; i < 50; ++i)
                s->record_run(run("r" + std::to_string(i), "I", "plan", i));
            REQUIRE(s->close());
        }
        auto size = std::filesystem::file_size(path);
        REQUIRE(size > 8192);
        {
            std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(4096);
            std::string junk(size - 4096, '\xa5');
            f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
        }
        auto before = read_all(path);
        auto s = SqliteStore::open(path, quick_options());
        REQUIRE_FALSE(s);
        CHECK(s.error().kind == StoreError::Kind::corrupt);
        CHECK_THAT(s.error().message, Catch::Contains(path.string()) && Catch::Contains("corrupt"));
        CHECK(read_all(path) == before);
    }
}

TEST_CASE("store: a database from a newer schema is refused, naming both versions", "[store]") {
    vik::test::TempDir dir;
    auto path = dir / "vik.db";
    { open_ok(path); }
    sqlite3 *db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    auto s = SqliteStore::open(path, quick_options());
    REQUIRE_FALSE(s);
    CHECK(s.error().kind == StoreError::Kind::newer_schema);
    CHECK_THAT(s.error().message, Catch::Contains(path.string()) && Catch::Contains("schema version 99") &&
                                      Catch::Contains(fmt::format("schema version {}", SqliteStore::schema_version())));
}

TEST_CASE("store: a database locked by another connection is refused within the busy timeout", "[store]") {
    vik::test::TempDir dir;
    auto path = dir / "vik.db";
    { open_ok(path); }
    sqlite3 *db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    auto t0 = std::chrono::steady_clock::now();
    auto s = SqliteStore::open(path, quick_options());
    auto waited = std::chrono::steady_clock::now() - t0;
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    REQUIRE_FALSE(s);
    CHECK(s.error().kind == StoreError::Kind::locked);
    CHECK_THAT(s.error().message, Catch::Contains(path.string()) && Catch::Contains("locked by another process"));
    CHECK(waited < 5s);
    CHECK(open_ok(path)); // free again once the other connection lets go
}

TEST_CASE("store: a write during a lock is kept and retried, nothing lost", "[store]") {
    vik::test::TempDir dir;
    auto path = dir / "vik.db";
    auto s = open_ok(path);
    sqlite3 *db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    s->record_run(run("w1", "L-1", "plan", 1));
    auto blocked = s->flush(800ms);
    REQUIRE_FALSE(blocked);
    CHECK(blocked.error().kind == StoreError::Kind::timeout);
    CHECK(s->write_error());
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    REQUIRE(s->flush(5s));
    CHECK_FALSE(s->write_error());
    auto h = s->history({});
    REQUIRE(h);
    REQUIRE(h->size() == 1);
}

TEST_CASE("store: disk full mid-write keeps the records and retries until space is freed", "[store]") {
    vik::test::TempDir dir;
    auto mnt = dir / "small";
    std::filesystem::create_directories(mnt);
    if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0)
        VIK_SKIP(std::string("cannot mount a small tmpfs: ") + std::strerror(errno));
    struct Unmount {
        std::filesystem::path p;
        ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } unmount{mnt};
    auto path = mnt / "vik.db";
    auto s = open_ok(path);
    // Fill the rest of the filesystem.
    auto filler = mnt / "filler";
    {
        std::ofstream f(filler, std::ios::binary);
        std::string block(4096, 'f');
        for (int i = 0; i < 100 && f; ++i)
            f.write(block.data(), static_cast<std::streamsize>(block.size())).flush();
    }
    std::vector<RunRecord> runs;
    for (int i = 0; i < 20; ++i) {
        auto r = finished(run("full" + std::to_string(i), "F-1", "code", i), RunOutcome::failed, i + 1000, i, i, i, 0.01);
        r.error = std::string(2000, 'e'); // needs pages the disk no longer has
        runs.push_back(r);
        s->record_run(r);
    }
    auto full = s->flush(1s);
    REQUIRE_FALSE(full);
    REQUIRE(s->write_error());
    CHECK_THAT(*s->write_error(), Catch::Contains(path.string()));
    CHECK(s->pending() == runs.size());

    std::filesystem::remove(filler);
    REQUIRE(s->flush(5s));
    CHECK_FALSE(s->write_error());
    auto h = s->history({.issue_id = "F-1", .limit = 100});
    REQUIRE(h);
    REQUIRE(h->size() == runs.size());
    check_run(h->back(), runs.front());
    check_run(h->front(), runs.back());
    REQUIRE(s->close());
}
