#include "store/sqlite_store.hpp"
#include "store/store_contract.hpp"
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
using vik::test::at_ms;
using vik::test::check_run;
using vik::test::claim;
using vik::test::finished;
using vik::test::run;

#define VIK_SKIP(why)                                                                                                            \
    do {                                                                                                                         \
        WARN("skipped: " << (why));                                                                                              \
        return;                                                                                                                  \
    } while (0)

namespace {

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

std::string read_all(const std::filesystem::path &p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

TEST_CASE("store: every record kind round-trips, claims as upserts and releases", "[store]") {
    vik::test::TempDir dir;
    auto path = dir / "state/vik.db";
    vik::test::check_round_trip([&] { return std::unique_ptr<Store>(open_ok(path)); });
    struct stat sb {};
    REQUIRE(::stat(path.c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
    REQUIRE(::stat(path.parent_path().c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0700);
}

TEST_CASE("store: history is newest first and per issue, stats total per issue, stage and agent", "[store]") {
    vik::test::TempDir dir;
    auto s = open_ok(dir / "vik.db");
    vik::test::check_history_and_stats(*s);
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
