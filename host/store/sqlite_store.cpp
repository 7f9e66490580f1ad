#include "store/sqlite_store.hpp"

#include "store/sqlite_schema.hpp"
#include "store/write_queue.hpp"
#include "util/private_files.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fmt/format.h>
#include <mutex>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <variant>

namespace vik::store {
namespace {

int64_t to_ms(WallTime t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(); }
WallTime from_ms(int64_t ms) { return WallTime{std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds{ms})}; }

StoreError::Kind classify(int rc) {
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return StoreError::Kind::locked;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return StoreError::Kind::corrupt;
    default:
        return StoreError::Kind::io;
    }
}

// A connection closed on scope exit (statements are finalized by their owners first).
struct Connection {
    sqlite3 *db = nullptr;
    Connection() = default;
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;
    ~Connection() {
        if (db) sqlite3_close_v2(db);
    }
};

struct Statement {
    sqlite3_stmt *s = nullptr;
    Statement() = default;
    Statement(const Statement &) = delete;
    Statement &operator=(const Statement &) = delete;
    ~Statement() {
        if (s) sqlite3_finalize(s);
    }
};

std::string errmsg(sqlite3 *db, int rc) {
    return fmt::format("{} (sqlite error {}: {})", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc, sqlite3_errstr(rc));
}

void bind_text(sqlite3_stmt *s, int i, const std::string &v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void bind_time(sqlite3_stmt *s, int i, const std::optional<WallTime> &t) {
    if (t)
        sqlite3_bind_int64(s, i, to_ms(*t));
    else
        sqlite3_bind_null(s, i);
}
void bind_int(sqlite3_stmt *s, int i, const std::optional<int> &v) {
    if (v)
        sqlite3_bind_int(s, i, *v);
    else
        sqlite3_bind_null(s, i);
}
std::string column_text(sqlite3_stmt *s, int i) {
    auto *p = reinterpret_cast<const char *>(sqlite3_column_text(s, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, i))) : std::string();
}
std::optional<WallTime> column_time(sqlite3_stmt *s, int i) {
    if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
    return from_ms(sqlite3_column_int64(s, i));
}
std::optional<int> column_int(sqlite3_stmt *s, int i) {
    if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int(s, i);
}

constexpr const char *claim_columns =
    "issue_id, stage, state, failures, continuations, runs, retry_kind, last_error, "
    "issue_state, due_at_ms, blocked_reason, blocked_at_ms, updated_at_ms, conversation_id, "
    "conversation_agent, conversation_turns, operator_message, question, routed_to, route_reason, "
    "routes, awaiting_approval, gate_feedback";
constexpr const char *run_columns = "run_id, issue_id, stage, agent, attempt, session_id, session_file, started_at_ms, "
                                    "ended_at_ms, outcome, error, exit_status, signal, tokens_in, tokens_out, "
                                    "tokens_cache_read, cost_usd, duration_sec";

ClaimRecord read_claim(sqlite3_stmt *s) {
    ClaimRecord c;
    c.issue_id = column_text(s, 0);
    c.stage = column_text(s, 1);
    auto state = column_text(s, 2);
    c.state = state == "retry_queued" ? ClaimState::retry_queued : state == "blocked" ? ClaimState::blocked : ClaimState::running;
    c.failures = sqlite3_column_int64(s, 3);
    c.continuations = sqlite3_column_int64(s, 4);
    c.runs = sqlite3_column_int64(s, 5);
    c.retry_kind = column_text(s, 6);
    c.last_error = column_text(s, 7);
    c.issue_state = column_text(s, 8);
    c.due_at = column_time(s, 9);
    c.blocked_reason = column_text(s, 10);
    c.blocked_at = column_time(s, 11);
    c.updated_at = from_ms(sqlite3_column_int64(s, 12));
    c.conversation_id = column_text(s, 13);
    c.conversation_agent = column_text(s, 14);
    c.conversation_turns = sqlite3_column_int64(s, 15);
    c.operator_message = column_text(s, 16);
    c.question = column_text(s, 17);
    c.routed_to = column_text(s, 18);
    c.route_reason = column_text(s, 19);
    c.routes = sqlite3_column_int64(s, 20);
    c.awaiting_approval = sqlite3_column_int64(s, 21) != 0;
    c.gate_feedback = column_text(s, 22);
    return c;
}

RunRecord read_run(sqlite3_stmt *s) {
    RunRecord r;
    r.run_id = column_text(s, 0);
    r.issue_id = column_text(s, 1);
    r.stage = column_text(s, 2);
    r.agent = column_text(s, 3);
    r.attempt = sqlite3_column_int64(s, 4);
    r.session_id = column_text(s, 5);
    r.session_file = column_text(s, 6);
    r.started_at = from_ms(sqlite3_column_int64(s, 7));
    r.ended_at = column_time(s, 8);
    r.outcome = parse_run_outcome(column_text(s, 9)).value_or(RunOutcome::failed);
    r.error = column_text(s, 10);
    r.exit_status = column_int(s, 11);
    r.signal = column_int(s, 12);
    r.tokens_in = sqlite3_column_int64(s, 13);
    r.tokens_out = sqlite3_column_int64(s, 14);
    r.tokens_cache_read = sqlite3_column_int64(s, 15);
    if (sqlite3_column_type(s, 16) != SQLITE_NULL) r.cost_usd = sqlite3_column_double(s, 16);
    r.duration_sec = sqlite3_column_double(s, 17);
    return r;
}

} // namespace

struct SqliteStore::Impl {
    std::filesystem::path path;
    SqliteOptions options;
    Connection writer; // owned by the writer thread after open
    Connection reader; // synchronous reads, under read_mu
    std::mutex read_mu;
    std::unique_ptr<WriteQueue> queue; // started once the database is open

    StoreError error(StoreError::Kind kind, const std::string &what) const {
        std::string msg;
        switch (kind) {
        case StoreError::Kind::locked:
            msg = fmt::format("{}: the database is locked by another process (waited {} ms): {}; stop the other "
                              "process using it (another vik-host or a sqlite3 shell) and try again",
                              path.string(), options.busy_timeout.count(), what);
            break;
        case StoreError::Kind::corrupt:
            msg = fmt::format("{}: the database is corrupt: {}; vik-host will not use it and will not replace it. Move "
                              "it aside (`sqlite3 {} .recover` can often salvage its records), then start again to "
                              "create a new one",
                              path.string(), what, path.string());
            break;
        default:
            msg = fmt::format("{}: {}", path.string(), what);
            break;
        }
        return StoreError{kind, std::move(msg)};
    }
    StoreError sqlite_error(sqlite3 *db, int rc, const std::string &doing) const {
        return error(classify(rc), fmt::format("{}: {}", doing, errmsg(db, rc)));
    }

    std::expected<void, StoreError> exec(sqlite3 *db, const std::string &sql, const std::string &doing) const {
        int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) return std::unexpected(sqlite_error(db, rc, doing));
        return {};
    }

    std::expected<void, StoreError> prepare(sqlite3 *db, Statement &st, const std::string &sql) const {
        int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &st.s, nullptr);
        if (rc != SQLITE_OK) return std::unexpected(sqlite_error(db, rc, "preparing a query"));
        return {};
    }

    std::expected<void, StoreError> connect(Connection &c) const {
        int rc = sqlite3_open_v2(path.c_str(), &c.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr);
        if (rc != SQLITE_OK) return std::unexpected(sqlite_error(c.db, rc, "opening"));
        sqlite3_extended_result_codes(c.db, 1);
        sqlite3_busy_timeout(c.db, static_cast<int>(options.busy_timeout.count()));
        return {};
    }

    void rollback(sqlite3 *db) const {
        if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    }

    // --- open -------------------------------------------------------------------------------

    std::expected<void, StoreError> check_integrity() {
        Statement st;
        if (auto r = prepare(writer.db, st, "PRAGMA quick_check"); !r) return r;
        std::string problems;
        int rows = 0;
        int rc;
        while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
            auto line = column_text(st.s, 0);
            if (line == "ok") continue;
            if (rows++ < 3) problems += (problems.empty() ? "" : "; ") + line;
        }
        if (rc != SQLITE_DONE) return std::unexpected(sqlite_error(writer.db, rc, "checking integrity"));
        if (rows > 0)
            return std::unexpected(
                error(StoreError::Kind::corrupt, fmt::format("PRAGMA quick_check found {} problem(s): {}", rows, problems)));
        return {};
    }

    std::expected<void, StoreError> migrate() {
        if (auto r = exec(writer.db, "BEGIN IMMEDIATE", "locking the database to check its schema"); !r) return r;
        auto fail = [&](StoreError e) -> std::expected<void, StoreError> {
            rollback(writer.db);
            return std::unexpected(std::move(e));
        };
        Statement st;
        if (auto r = prepare(writer.db, st, "PRAGMA user_version"); !r) return fail(r.error());
        int rc = sqlite3_step(st.s);
        if (rc != SQLITE_ROW) return fail(sqlite_error(writer.db, rc, "reading the schema version"));
        int version = sqlite3_column_int(st.s, 0);
        sqlite3_reset(st.s);
        const auto &steps = sqlite_migrations();
        int latest = static_cast<int>(steps.size());
        if (version > latest)
            return fail(error(StoreError::Kind::newer_schema,
                              fmt::format("the database has schema version {}, newer than this vik-host knows (schema "
                                          "version {}); run the vik-host that wrote it (or a newer one), or move the "
                                          "file aside to start a new database",
                                          version, latest)));
        for (int v = version; v < latest; ++v) {
            if (auto r =
                    exec(writer.db, steps[static_cast<size_t>(v)].sql,
                         fmt::format("migrating to schema version {} ({})", v + 1, steps[static_cast<size_t>(v)].description));
                !r)
                return fail(r.error());
        }
        if (version != latest)
            if (auto r = exec(writer.db, fmt::format("PRAGMA user_version = {}", latest), "setting the schema version"); !r)
                return fail(r.error());
        if (auto r = exec(writer.db, "COMMIT", "committing the schema"); !r) return fail(r.error());
        if (version != latest)
            spdlog::info("store schema migrated db={} from_version={} to_version={}", path.string(), version, latest);
        return {};
    }

    std::expected<void, StoreError> open_files() {
        if (auto ec = util::create_private_directories(path.parent_path()); ec)
            return std::unexpected(error(StoreError::Kind::io, fmt::format("cannot create its directory: {}", ec.message())));
        // Created 0600 before SQLite sees it: SQLite gives the -wal and -shm files the same mode.
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) return std::unexpected(error(StoreError::Kind::io, fmt::format("cannot open: {}", std::strerror(errno))));
        ::fchmod(fd, 0600);
        ::close(fd);
        if (auto r = connect(writer); !r) return r;
        if (options.quick_check)
            if (auto r = check_integrity(); !r) return r;
        {
            Statement st;
            if (auto r = prepare(writer.db, st, "PRAGMA journal_mode = WAL"); !r) return r;
            int rc = sqlite3_step(st.s);
            if (rc != SQLITE_ROW) return std::unexpected(sqlite_error(writer.db, rc, "switching to WAL mode"));
            if (column_text(st.s, 0) != "wal")
                return std::unexpected(
                    error(StoreError::Kind::io, fmt::format("cannot use WAL mode (journal mode is {})", column_text(st.s, 0))));
        }
        // FULL: a committed batch survives power loss too; the fsync is paid once per batch.
        if (auto r = exec(writer.db, "PRAGMA synchronous = FULL", "setting synchronous"); !r) return r;
        if (auto r = migrate(); !r) return r;
        if (auto r = connect(reader); !r) return r;
        return {};
    }

    // --- writer thread ----------------------------------------------------------------------

    // The writer's prepared statements, one per kind of write.
    struct WriteStatements {
        Statement claim_up, claim_del, issue_del, run_up, outcome_up, outcome_del, schedule_up;
    };

    std::expected<void, std::string> apply(const std::deque<WriteOp> &batch, WriteStatements &w) {
        Statement &claim_up = w.claim_up, &claim_del = w.claim_del, &issue_del = w.issue_del, &run_up = w.run_up;
        sqlite3 *db = writer.db;
        int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) return std::unexpected(errmsg(db, rc));
        auto step = [&](sqlite3_stmt *s) {
            int r = sqlite3_step(s);
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            return r;
        };
        for (const auto &op : batch) {
            int r = SQLITE_DONE;
            if (auto *c = std::get_if<ClaimRecord>(&op)) {
                auto *s = claim_up.s;
                bind_text(s, 1, c->issue_id);
                bind_text(s, 2, c->stage);
                bind_text(s, 3, claim_state_name(c->state));
                sqlite3_bind_int64(s, 4, c->failures);
                sqlite3_bind_int64(s, 5, c->continuations);
                sqlite3_bind_int64(s, 6, c->runs);
                bind_text(s, 7, c->retry_kind);
                bind_text(s, 8, c->last_error);
                bind_text(s, 9, c->issue_state);
                bind_time(s, 10, c->due_at);
                bind_text(s, 11, c->blocked_reason);
                bind_time(s, 12, c->blocked_at);
                sqlite3_bind_int64(s, 13, to_ms(c->updated_at));
                bind_text(s, 14, c->conversation_id);
                bind_text(s, 15, c->conversation_agent);
                sqlite3_bind_int64(s, 16, c->conversation_turns);
                bind_text(s, 17, c->operator_message);
                bind_text(s, 18, c->question);
                bind_text(s, 19, c->routed_to);
                bind_text(s, 20, c->route_reason);
                sqlite3_bind_int64(s, 21, c->routes);
                sqlite3_bind_int64(s, 22, c->awaiting_approval ? 1 : 0);
                bind_text(s, 23, c->gate_feedback);
                r = step(s);
            } else if (auto *rc_ = std::get_if<ReleaseClaim>(&op)) {
                bind_text(claim_del.s, 1, rc_->issue_id);
                bind_text(claim_del.s, 2, rc_->stage);
                r = step(claim_del.s);
            } else if (auto *ri = std::get_if<ReleaseIssue>(&op)) {
                bind_text(issue_del.s, 1, ri->issue_id);
                r = step(issue_del.s);
            } else if (auto *run = std::get_if<RunRecord>(&op)) {
                auto *s = run_up.s;
                bind_text(s, 1, run->run_id);
                bind_text(s, 2, run->issue_id);
                bind_text(s, 3, run->stage);
                bind_text(s, 4, run->agent);
                sqlite3_bind_int64(s, 5, run->attempt);
                bind_text(s, 6, run->session_id);
                bind_text(s, 7, run->session_file);
                sqlite3_bind_int64(s, 8, to_ms(run->started_at));
                bind_time(s, 9, run->ended_at);
                bind_text(s, 10, run_outcome_name(run->outcome));
                bind_text(s, 11, run->error);
                bind_int(s, 12, run->exit_status);
                bind_int(s, 13, run->signal);
                sqlite3_bind_int64(s, 14, run->tokens_in);
                sqlite3_bind_int64(s, 15, run->tokens_out);
                sqlite3_bind_int64(s, 16, run->tokens_cache_read);
                if (run->cost_usd)
                    sqlite3_bind_double(s, 17, *run->cost_usd);
                else
                    sqlite3_bind_null(s, 17);
                sqlite3_bind_double(s, 18, run->duration_sec);
                r = step(s);
            } else if (auto *o = std::get_if<OutcomeRecord>(&op)) {
                bind_text(w.outcome_up.s, 1, o->issue_id);
                bind_text(w.outcome_up.s, 2, o->stage);
                bind_text(w.outcome_up.s, 3, o->json);
                sqlite3_bind_int64(w.outcome_up.s, 4, to_ms(o->recorded_at));
                r = step(w.outcome_up.s);
            } else if (auto *fo = std::get_if<ForgetOutcomes>(&op)) {
                bind_text(w.outcome_del.s, 1, fo->issue_id);
                r = step(w.outcome_del.s);
            } else if (auto *sf = std::get_if<ScheduleRecord>(&op)) {
                bind_text(w.schedule_up.s, 1, sf->name);
                sqlite3_bind_int64(w.schedule_up.s, 2, to_ms(sf->last_fired));
                r = step(w.schedule_up.s);
            }
            if (r != SQLITE_DONE) {
                auto msg = errmsg(db, r);
                rollback(db);
                return std::unexpected(msg);
            }
        }
        rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) {
            auto msg = errmsg(db, rc);
            rollback(db);
            return std::unexpected(msg);
        }
        return {};
    }

    // The writer thread's apply: prepares its statements on first use (a statement belongs to the
    // thread's connection), then applies each batch in one transaction.
    WriteQueue::Apply writer_apply() {
        auto w = std::make_shared<WriteStatements>();
        auto prepared = std::make_shared<std::optional<std::string>>(); // set once: "" or the error
        return [this, w, prepared](const std::deque<WriteOp> &batch) -> std::expected<void, std::string> {
            if (!*prepared) {
                std::string first_error;
                auto prep = [&](Statement &st, const std::string &sql) {
                    if (auto r = prepare(writer.db, st, sql); !r && first_error.empty()) first_error = r.error().message;
                };
                prep(w->claim_up,
                     fmt::format("INSERT OR REPLACE INTO claims({}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                 claim_columns));
                prep(w->claim_del, "DELETE FROM claims WHERE issue_id = ? AND stage = ?");
                prep(w->issue_del, "DELETE FROM claims WHERE issue_id = ?");
                prep(w->run_up,
                     fmt::format("INSERT OR REPLACE INTO runs({}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", run_columns));
                prep(w->outcome_up,
                     "INSERT OR REPLACE INTO outcomes(issue_id, stage, outcome_json, recorded_at_ms) VALUES(?,?,?,?)");
                prep(w->outcome_del, "DELETE FROM outcomes WHERE issue_id = ?");
                prep(w->schedule_up, "INSERT OR REPLACE INTO schedules(name, last_fired_ms) VALUES(?,?)");
                *prepared = first_error;
            }
            if (!(*prepared)->empty()) return std::unexpected(**prepared);
            return apply(batch, *w);
        };
    }
};

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::expected<std::unique_ptr<SqliteStore>, StoreError> SqliteStore::open(const std::filesystem::path &file,
                                                                          SqliteOptions options) {
    auto impl = std::make_unique<Impl>();
    impl->path = file;
    impl->options = options;
    if (auto r = impl->open_files(); !r) return std::unexpected(r.error());
    WriteQueueOptions q;
    q.flush_interval = options.flush_interval;
    q.queue_capacity = options.queue_capacity;
    q.max_batch = options.max_batch;
    q.retry_min = options.retry_min;
    q.retry_max = options.retry_max;
    q.close_timeout = options.close_timeout;
    impl->queue = std::make_unique<WriteQueue>(file.string(), q, impl->writer_apply());
    return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

int SqliteStore::schema_version() { return static_cast<int>(sqlite_migrations().size()); }

SqliteStore::~SqliteStore() {
    if (auto r = close(); !r) spdlog::error("{}", r.error().message);
    impl_->queue.reset(); // the writer thread ends before the connections close
}

WriteQueue &SqliteStore::write_queue() const { return *impl_->queue; }

std::string SqliteStore::location() const { return impl_->path.string(); }

std::expected<Recovery, StoreError> SqliteStore::recover(WallTime now) {
    auto &im = *impl_;
    std::lock_guard lk(im.read_mu);
    sqlite3 *db = im.reader.db;
    if (auto r = im.exec(db, "BEGIN IMMEDIATE", "locking the database for recovery"); !r) return std::unexpected(r.error());
    auto fail = [&](StoreError e) -> std::expected<Recovery, StoreError> {
        im.rollback(db);
        return std::unexpected(std::move(e));
    };
    Recovery out;
    {
        Statement st;
        if (auto r = im.prepare(
                db, st, fmt::format("SELECT {} FROM runs WHERE outcome = 'running' ORDER BY started_at_ms, rowid", run_columns));
            !r)
            return fail(r.error());
        int rc;
        while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
            auto run = read_run(st.s);
            run.outcome = RunOutcome::interrupted;
            run.ended_at = now;
            if (run.error.empty()) run.error = "interrupted: vik-host stopped while this run was running";
            out.interrupted_runs.push_back(std::move(run));
        }
        if (rc != SQLITE_DONE) return fail(im.sqlite_error(db, rc, "reading running runs"));
    }
    {
        Statement st;
        if (auto r = im.prepare(db, st,
                                "UPDATE runs SET outcome = 'interrupted', ended_at_ms = ?, error = CASE WHEN error = '' THEN "
                                "'interrupted: vik-host stopped while this run was running' ELSE error END "
                                "WHERE outcome = 'running'");
            !r)
            return fail(r.error());
        sqlite3_bind_int64(st.s, 1, to_ms(now));
        if (int rc = sqlite3_step(st.s); rc != SQLITE_DONE) return fail(im.sqlite_error(db, rc, "marking runs interrupted"));
    }
    {
        Statement st;
        if (auto r = im.prepare(db, st, fmt::format("SELECT {} FROM claims ORDER BY issue_id, stage", claim_columns)); !r)
            return fail(r.error());
        int rc;
        while ((rc = sqlite3_step(st.s)) == SQLITE_ROW)
            out.add(read_claim(st.s), now);
        if (rc != SQLITE_DONE) return fail(im.sqlite_error(db, rc, "reading claims"));
    }
    {
        Statement st;
        if (auto r =
                im.prepare(db, st, "SELECT issue_id, stage, outcome_json, recorded_at_ms FROM outcomes ORDER BY issue_id, stage");
            !r)
            return fail(r.error());
        int rc;
        while ((rc = sqlite3_step(st.s)) == SQLITE_ROW)
            out.outcomes.push_back(OutcomeRecord{column_text(st.s, 0), column_text(st.s, 1), column_text(st.s, 2),
                                                 from_ms(sqlite3_column_int64(st.s, 3))});
        if (rc != SQLITE_DONE) return fail(im.sqlite_error(db, rc, "reading outcomes"));
    }
    {
        Statement st;
        if (auto r = im.prepare(db, st, "SELECT name, last_fired_ms FROM schedules ORDER BY name"); !r) return fail(r.error());
        int rc;
        while ((rc = sqlite3_step(st.s)) == SQLITE_ROW)
            out.schedules.push_back(ScheduleRecord{column_text(st.s, 0), from_ms(sqlite3_column_int64(st.s, 1))});
        if (rc != SQLITE_DONE) return fail(im.sqlite_error(db, rc, "reading schedules"));
    }
    if (auto r = im.exec(db, "COMMIT", "committing recovery"); !r) return fail(r.error());
    return out;
}

std::expected<std::vector<RunRecord>, StoreError> SqliteStore::history(const HistoryQuery &query) {
    auto &im = *impl_;
    std::lock_guard lk(im.read_mu);
    sqlite3 *db = im.reader.db;
    Statement st;
    auto sql = fmt::format("SELECT {} FROM runs {} ORDER BY started_at_ms DESC, rowid DESC LIMIT ?", run_columns,
                           query.issue_id ? "WHERE issue_id = ?" : "");
    if (auto r = im.prepare(db, st, sql); !r) return std::unexpected(r.error());
    int i = 1;
    if (query.issue_id) bind_text(st.s, i++, *query.issue_id);
    sqlite3_bind_int64(st.s, i, static_cast<int64_t>(std::min<size_t>(query.limit, INT64_MAX)));
    std::vector<RunRecord> out;
    int rc;
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW)
        out.push_back(read_run(st.s));
    if (rc != SQLITE_DONE) return std::unexpected(im.sqlite_error(db, rc, "reading history"));
    return out;
}

std::expected<std::vector<ClaimRecord>, StoreError> SqliteStore::claims() {
    auto &im = *impl_;
    std::lock_guard lk(im.read_mu);
    sqlite3 *db = im.reader.db;
    Statement st;
    if (auto r = im.prepare(db, st, fmt::format("SELECT {} FROM claims ORDER BY issue_id, stage", claim_columns)); !r)
        return std::unexpected(r.error());
    std::vector<ClaimRecord> out;
    int rc;
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW)
        out.push_back(read_claim(st.s));
    if (rc != SQLITE_DONE) return std::unexpected(im.sqlite_error(db, rc, "reading claims"));
    return out;
}

std::expected<Stats, StoreError> SqliteStore::stats() {
    auto &im = *impl_;
    std::lock_guard lk(im.read_mu);
    sqlite3 *db = im.reader.db;
    auto totals = [&](const char *key, std::vector<GroupTotals> &into) -> std::expected<void, StoreError> {
        auto sql = fmt::format(
            "SELECT {}, COUNT(*), COALESCE(SUM(outcome = 'succeeded'), 0), COALESCE(SUM(outcome IN ('failed', 'interrupted')), "
            "0), "
            "COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0), COALESCE(SUM(tokens_cache_read), 0), TOTAL(cost_usd), "
            "TOTAL(duration_sec) FROM runs{}",
            key ? key : "''", key ? fmt::format(" GROUP BY {} ORDER BY {}", key, key) : std::string());
        Statement st;
        if (auto r = im.prepare(db, st, sql); !r) return r;
        int rc;
        while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
            GroupTotals g;
            g.key = column_text(st.s, 0);
            auto &t = g.totals;
            t.runs = sqlite3_column_int64(st.s, 1);
            t.successes = sqlite3_column_int64(st.s, 2);
            t.failures = sqlite3_column_int64(st.s, 3);
            t.tokens_in = sqlite3_column_int64(st.s, 4);
            t.tokens_out = sqlite3_column_int64(st.s, 5);
            t.tokens_cache_read = sqlite3_column_int64(st.s, 6);
            t.cost_usd = sqlite3_column_double(st.s, 7);
            t.seconds = sqlite3_column_double(st.s, 8);
            into.push_back(std::move(g));
        }
        if (rc != SQLITE_DONE) return std::unexpected(im.sqlite_error(db, rc, "reading stats"));
        return {};
    };
    Stats s;
    std::vector<GroupTotals> overall;
    if (auto r = totals(nullptr, overall); !r) return std::unexpected(r.error());
    if (!overall.empty()) s.overall = overall.front().totals;
    if (auto r = totals("issue_id", s.per_issue); !r) return std::unexpected(r.error());
    if (auto r = totals("stage", s.per_stage); !r) return std::unexpected(r.error());
    if (auto r = totals("agent", s.per_agent); !r) return std::unexpected(r.error());
    return s;
}

} // namespace vik::store
