#include "store/postgres_store.hpp"

#include "util/untrusted_text.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <vector>

namespace vik::store {
namespace {

int64_t to_ms(WallTime t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(); }
WallTime from_ms(int64_t ms) { return WallTime{std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds{ms})}; }

// The schema as forward migrations: step i takes vik_schema.version from i to i + 1. Steps are
// only appended, never edited. Every table is keyed by the workflow id first.
struct Migration {
    const char *description;
    const char *sql;
};
const std::vector<Migration> &migrations() {
    static const std::vector<Migration> steps = {
        {"claims, runs, outcomes and schedules", R"sql(
CREATE TABLE vik_claims (
  workflow_id        TEXT NOT NULL,
  issue_id           TEXT NOT NULL,
  stage              TEXT NOT NULL,
  state              TEXT NOT NULL CHECK (state IN ('running', 'retry_queued', 'blocked')),
  failures           BIGINT NOT NULL,
  continuations      BIGINT NOT NULL,
  runs               BIGINT NOT NULL,
  retry_kind         TEXT NOT NULL,
  last_error         TEXT NOT NULL,
  issue_state        TEXT NOT NULL,
  due_at_ms          BIGINT,
  blocked_reason     TEXT NOT NULL,
  blocked_at_ms      BIGINT,
  updated_at_ms      BIGINT NOT NULL,
  conversation_id    TEXT NOT NULL,
  conversation_agent TEXT NOT NULL,
  conversation_turns BIGINT NOT NULL,
  operator_message   TEXT NOT NULL,
  question           TEXT NOT NULL,
  routed_to          TEXT NOT NULL,
  route_reason       TEXT NOT NULL,
  routes             BIGINT NOT NULL,
  awaiting_approval  BOOLEAN NOT NULL,
  gate_feedback      TEXT NOT NULL,
  PRIMARY KEY (workflow_id, issue_id, stage)
);
CREATE TABLE vik_runs (
  workflow_id       TEXT NOT NULL,
  run_id            TEXT NOT NULL,
  seq               BIGSERIAL,
  issue_id          TEXT NOT NULL,
  stage             TEXT NOT NULL,
  agent             TEXT NOT NULL,
  attempt           BIGINT NOT NULL,
  session_id        TEXT NOT NULL,
  session_file      TEXT NOT NULL,
  started_at_ms     BIGINT NOT NULL,
  ended_at_ms       BIGINT,
  outcome           TEXT NOT NULL,
  error             TEXT NOT NULL,
  exit_status       INTEGER,
  signal            INTEGER,
  tokens_in         BIGINT NOT NULL,
  tokens_out        BIGINT NOT NULL,
  tokens_cache_read BIGINT NOT NULL,
  cost_usd          DOUBLE PRECISION,
  duration_sec      DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (workflow_id, run_id)
);
CREATE INDEX vik_runs_by_start ON vik_runs (workflow_id, started_at_ms);
CREATE INDEX vik_runs_by_issue ON vik_runs (workflow_id, issue_id, started_at_ms);
CREATE INDEX vik_runs_running ON vik_runs (workflow_id) WHERE outcome = 'running';
CREATE TABLE vik_outcomes (
  workflow_id    TEXT NOT NULL,
  issue_id       TEXT NOT NULL,
  stage          TEXT NOT NULL,
  outcome_json   TEXT NOT NULL,
  recorded_at_ms BIGINT NOT NULL,
  PRIMARY KEY (workflow_id, issue_id, stage)
);
CREATE TABLE vik_schedules (
  workflow_id   TEXT NOT NULL,
  name          TEXT NOT NULL,
  last_fired_ms BIGINT NOT NULL,
  PRIMARY KEY (workflow_id, name)
);
)sql"},
    };
    return steps;
}

// The advisory lock that serialises schema migrations of hosts starting together.
constexpr int64_t kMigrationLock = 0x76696b2d686f7374; // "vik-host"

constexpr const char *claim_columns =
    "issue_id, stage, state, failures, continuations, runs, retry_kind, last_error, issue_state, due_at_ms, "
    "blocked_reason, blocked_at_ms, updated_at_ms, conversation_id, conversation_agent, conversation_turns, "
    "operator_message, question, routed_to, route_reason, routes, awaiting_approval, gate_feedback";
constexpr int claim_column_count = 23;
constexpr const char *run_columns = "run_id, issue_id, stage, agent, attempt, session_id, session_file, started_at_ms, "
                                    "ended_at_ms, outcome, error, exit_status, signal, tokens_in, tokens_out, "
                                    "tokens_cache_read, cost_usd, duration_sec";
constexpr int run_column_count = 18;

// "$2, $3, ..., $n+1": the placeholders after the workflow id ($1).
std::string placeholders(int n) {
    std::string out;
    for (int i = 0; i < n; ++i)
        out += fmt::format("{}${}", i ? ", " : "", i + 2);
    return out;
}

// "c = EXCLUDED.c" for every column but the key: an upsert.
std::string updates(const char *columns, int key_columns) {
    std::string out, cols(columns);
    int index = 0;
    size_t start = 0;
    while (start < cols.size()) {
        size_t end = cols.find(',', start);
        std::string name = cols.substr(start, end == std::string::npos ? std::string::npos : end - start);
        name.erase(0, name.find_first_not_of(' '));
        if (index++ >= key_columns) out += fmt::format("{}{} = EXCLUDED.{}", out.empty() ? "" : ", ", name, name);
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return out;
}

struct Connection {
    PGconn *c = nullptr;
    Connection() = default;
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;
    ~Connection() {
        if (c) PQfinish(c);
    }
};

struct Result {
    PGresult *r = nullptr;
    explicit Result(PGresult *p) : r(p) {}
    Result(Result &&o) noexcept : r(std::exchange(o.r, nullptr)) {}
    Result &operator=(Result &&) = delete;
    Result(const Result &) = delete;
    ~Result() {
        if (r) PQclear(r);
    }
    int rows() const { return PQntuples(r); }
    bool null(int row, int col) const { return PQgetisnull(r, row, col) != 0; }
    std::string text(int row, int col) const { return std::string(PQgetvalue(r, row, col), PQgetlength(r, row, col)); }
    int64_t integer(int row, int col) const { return null(row, col) ? 0 : std::stoll(PQgetvalue(r, row, col)); }
    double real(int row, int col) const { return null(row, col) ? 0 : std::stod(PQgetvalue(r, row, col)); }
    std::optional<WallTime> time(int row, int col) const {
        if (null(row, col)) return std::nullopt;
        return from_ms(integer(row, col));
    }
    std::optional<int> opt_int(int row, int col) const {
        if (null(row, col)) return std::nullopt;
        return static_cast<int>(integer(row, col));
    }
};

// Statement parameters as text; absent values are SQL NULL.
struct Params {
    std::vector<std::optional<std::string>> values;
    // Agents' texts (an error's stderr tail cut at a byte count) may be invalid UTF-8 or hold NUL,
    // which a UTF-8 database refuses for good: the batch would be retried forever. Stored as
    // valid UTF-8 without NUL instead.
    Params &text(const std::string &s) {
        std::string clean = util::to_valid_utf8(s);
        std::erase(clean, '\0');
        values.emplace_back(std::move(clean));
        return *this;
    }
    Params &integer(int64_t v) {
        values.emplace_back(std::to_string(v));
        return *this;
    }
    Params &time(const std::optional<WallTime> &t) {
        values.push_back(t ? std::optional<std::string>(std::to_string(to_ms(*t))) : std::nullopt);
        return *this;
    }
    Params &opt_int(const std::optional<int> &v) {
        values.push_back(v ? std::optional<std::string>(std::to_string(*v)) : std::nullopt);
        return *this;
    }
    Params &real(const std::optional<double> &v) {
        values.push_back(v ? std::optional<std::string>(fmt::format("{:.17g}", *v)) : std::nullopt);
        return *this;
    }
    Params &boolean(bool b) {
        values.emplace_back(b ? "true" : "false");
        return *this;
    }
};

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

// Runs one statement; the server's message (with its SQLSTATE) when it failed.
std::expected<Result, std::string> exec(PGconn *c, const std::string &sql, const Params &p = {}) {
    std::vector<const char *> values;
    values.reserve(p.values.size());
    for (const auto &v : p.values)
        values.push_back(v ? v->c_str() : nullptr);
    // Without parameters, the simple protocol: a migration is several statements in one text.
    Result r(values.empty()
                 ? PQexec(c, sql.c_str())
                 : PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0));
    auto status = r.r ? PQresultStatus(r.r) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
    std::string message = trimmed(r.r ? PQresultErrorMessage(r.r) : PQerrorMessage(c));
    const char *state = r.r ? PQresultErrorField(r.r, PG_DIAG_SQLSTATE) : nullptr;
    if (message.empty()) message = trimmed(PQerrorMessage(c));
    return std::unexpected(state ? fmt::format("{} (SQLSTATE {})", message, state) : message);
}

ClaimRecord read_claim(const Result &r, int row) {
    ClaimRecord c;
    c.issue_id = r.text(row, 0);
    c.stage = r.text(row, 1);
    auto state = r.text(row, 2);
    c.state = state == "retry_queued" ? ClaimState::retry_queued : state == "blocked" ? ClaimState::blocked : ClaimState::running;
    c.failures = r.integer(row, 3);
    c.continuations = r.integer(row, 4);
    c.runs = r.integer(row, 5);
    c.retry_kind = r.text(row, 6);
    c.last_error = r.text(row, 7);
    c.issue_state = r.text(row, 8);
    c.due_at = r.time(row, 9);
    c.blocked_reason = r.text(row, 10);
    c.blocked_at = r.time(row, 11);
    c.updated_at = from_ms(r.integer(row, 12));
    c.conversation_id = r.text(row, 13);
    c.conversation_agent = r.text(row, 14);
    c.conversation_turns = r.integer(row, 15);
    c.operator_message = r.text(row, 16);
    c.question = r.text(row, 17);
    c.routed_to = r.text(row, 18);
    c.route_reason = r.text(row, 19);
    c.routes = r.integer(row, 20);
    c.awaiting_approval = r.text(row, 21) == "t";
    c.gate_feedback = r.text(row, 22);
    return c;
}

RunRecord read_run(const Result &r, int row) {
    RunRecord x;
    x.run_id = r.text(row, 0);
    x.issue_id = r.text(row, 1);
    x.stage = r.text(row, 2);
    x.agent = r.text(row, 3);
    x.attempt = r.integer(row, 4);
    x.session_id = r.text(row, 5);
    x.session_file = r.text(row, 6);
    x.started_at = from_ms(r.integer(row, 7));
    x.ended_at = r.time(row, 8);
    x.outcome = parse_run_outcome(r.text(row, 9)).value_or(RunOutcome::failed);
    x.error = r.text(row, 10);
    x.exit_status = r.opt_int(row, 11);
    x.signal = r.opt_int(row, 12);
    x.tokens_in = r.integer(row, 13);
    x.tokens_out = r.integer(row, 14);
    x.tokens_cache_read = r.integer(row, 15);
    if (!r.null(row, 16)) x.cost_usd = r.real(row, 16);
    x.duration_sec = r.real(row, 17);
    return x;
}

} // namespace

struct PostgresStore::Impl {
    std::string conninfo, workflow_id, where; // where: server and database, for messages
    PostgresOptions options;
    Connection writer; // the writer thread's, after open
    Connection reader; // synchronous reads, under read_mu
    Connection holder; // exclusive: the connection whose session holds the workflow's lock
    bool exclusive_lock = false;

    // The session advisory lock on the workflow id (PostgresOptions::exclusive), on `holder`.
    std::expected<void, std::string> take_lock() {
        auto got = exec(holder.c, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", Params{}.text(workflow_id));
        if (!got) return std::unexpected("taking the workflow's lock: " + got.error());
        if (got->text(0, 0) != "t")
            return std::unexpected("another vik-host runs this workflow on this database (it holds the workflow's lock); "
                                   "stop it first, or give this workflow its own store.workflow_id");
        return {};
    }
    std::mutex read_mu;
    std::unique_ptr<WriteQueue> queue;

    StoreError error(StoreError::Kind kind, const std::string &what) const {
        return StoreError{kind, fmt::format("{}: {}", location(), what)};
    }
    std::string location() const { return fmt::format("postgresql {} workflow {}", where, workflow_id); }

    // Connects `conn` if it is not connected (again, after the server went away).
    std::expected<void, std::string> ensure(Connection &conn) {
        if (conn.c && PQstatus(conn.c) == CONNECTION_OK) return {};
        if (conn.c) {
            PQreset(conn.c);
        } else {
            // A dead peer must not hold a call for hours: TCP keepalives and a user timeout notice
            // it, and a statement timeout bounds what a live but stuck server can take.
            std::string timeout = std::to_string(std::max<int64_t>(1, options.connect_timeout.count()));
            const char *keys[] = {"dbname",
                                  "connect_timeout",
                                  "application_name",
                                  "keepalives_idle",
                                  "keepalives_interval",
                                  "keepalives_count",
                                  "tcp_user_timeout",
                                  "options",
                                  nullptr};
            const char *values[] = {
                conninfo.c_str(), timeout.c_str(), "vik-host", "10", "5", "3", "30000", "-c statement_timeout=60000", nullptr};
            conn.c = PQconnectdbParams(keys, values, 1);
        }
        if (!conn.c) return std::unexpected("out of memory");
        if (PQstatus(conn.c) != CONNECTION_OK) return std::unexpected("cannot connect: " + trimmed(PQerrorMessage(conn.c)));
        if (exclusive_lock && &conn == &holder)
            if (auto held = take_lock(); !held) return held;
        exec(conn.c, "SET client_min_messages = warning"); // no NOTICE chatter on stderr
        return {};
    }

    std::expected<void, StoreError> migrate() {
        PGconn *c = writer.c;
        auto fail = [&](const std::string &what) -> std::expected<void, StoreError> {
            exec(c, "ROLLBACK");
            return std::unexpected(error(StoreError::Kind::io, what));
        };
        if (auto r = exec(c, "BEGIN"); !r) return fail("starting the schema check: " + r.error());
        if (auto r = exec(c, "SELECT pg_advisory_xact_lock($1)", Params{}.integer(kMigrationLock)); !r)
            return fail("locking the schema: " + r.error());
        if (auto r = exec(c, "CREATE TABLE IF NOT EXISTS vik_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER "
                             "NOT NULL)");
            !r)
            return fail("creating vik_schema: " + r.error());
        auto v = exec(c, "SELECT version FROM vik_schema");
        if (!v) return fail("reading the schema version: " + v.error());
        int version = v->rows() ? static_cast<int>(v->integer(0, 0)) : 0;
        int latest = static_cast<int>(migrations().size());
        if (version > latest) {
            exec(c, "ROLLBACK");
            return std::unexpected(error(StoreError::Kind::newer_schema,
                                         fmt::format("the database has vik schema version {}, newer than this vik-host knows "
                                                     "(schema version {}); upgrade this host to the version the others run",
                                                     version, latest)));
        }
        for (int s = version; s < latest; ++s) {
            const auto &step = migrations()[static_cast<size_t>(s)];
            if (auto r = exec(c, step.sql); !r)
                return fail(fmt::format("migrating to schema version {} ({}): {}", s + 1, step.description, r.error()));
        }
        if (version != latest)
            if (auto r = exec(c,
                              "INSERT INTO vik_schema(id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = "
                              "EXCLUDED.version",
                              Params{}.integer(latest));
                !r)
                return fail("setting the schema version: " + r.error());
        if (auto r = exec(c, "COMMIT"); !r) return fail("committing the schema: " + r.error());
        if (version != latest)
            spdlog::info("store schema migrated db={} from_version={} to_version={}", location(), version, latest);
        return {};
    }

    // One batch in one transaction, on the writer thread.
    std::expected<void, std::string> apply(const std::deque<WriteOp> &batch) {
        // The lock lives in the holder's session: a database restart ends it, so it is taken
        // again before anything is written. Another host that took it meanwhile stops our writes
        // (reported until this host is stopped) rather than letting two hosts write one workflow.
        if (exclusive_lock && (!holder.c || PQstatus(holder.c) != CONNECTION_OK || !exec(holder.c, "SELECT 1")))
            if (auto ok = ensure(holder); !ok) return std::unexpected(ok.error());
        if (auto ok = ensure(writer); !ok) return std::unexpected(ok.error());
        PGconn *c = writer.c;
        static const std::string claim_up =
            fmt::format("INSERT INTO vik_claims(workflow_id, {}) VALUES ($1, {}) ON CONFLICT (workflow_id, issue_id, stage) "
                        "DO UPDATE SET {}",
                        claim_columns, placeholders(claim_column_count), updates(claim_columns, 2));
        static const std::string run_up = fmt::format(
            "INSERT INTO vik_runs(workflow_id, {}) VALUES ($1, {}) ON CONFLICT (workflow_id, run_id) DO UPDATE SET {}",
            run_columns, placeholders(run_column_count), updates(run_columns, 1));
        auto fail = [&](const std::string &what) -> std::expected<void, std::string> {
            if (PQstatus(c) == CONNECTION_OK) exec(c, "ROLLBACK");
            return std::unexpected(what);
        };
        if (auto r = exec(c, "BEGIN"); !r) return fail(r.error());
        for (const auto &op : batch) {
            Params p;
            p.text(workflow_id);
            std::string sql;
            if (auto *cl = std::get_if<ClaimRecord>(&op)) {
                p.text(cl->issue_id).text(cl->stage).text(claim_state_name(cl->state)).integer(cl->failures);
                p.integer(cl->continuations).integer(cl->runs).text(cl->retry_kind).text(cl->last_error);
                p.text(cl->issue_state).time(cl->due_at).text(cl->blocked_reason).time(cl->blocked_at);
                p.integer(to_ms(cl->updated_at)).text(cl->conversation_id).text(cl->conversation_agent);
                p.integer(cl->conversation_turns).text(cl->operator_message).text(cl->question).text(cl->routed_to);
                p.text(cl->route_reason).integer(cl->routes).boolean(cl->awaiting_approval).text(cl->gate_feedback);
                sql = claim_up;
            } else if (auto *rc = std::get_if<ReleaseClaim>(&op)) {
                p.text(rc->issue_id).text(rc->stage);
                sql = "DELETE FROM vik_claims WHERE workflow_id = $1 AND issue_id = $2 AND stage = $3";
            } else if (auto *ri = std::get_if<ReleaseIssue>(&op)) {
                p.text(ri->issue_id);
                sql = "DELETE FROM vik_claims WHERE workflow_id = $1 AND issue_id = $2";
            } else if (auto *run = std::get_if<RunRecord>(&op)) {
                p.text(run->run_id).text(run->issue_id).text(run->stage).text(run->agent).integer(run->attempt);
                p.text(run->session_id).text(run->session_file).integer(to_ms(run->started_at)).time(run->ended_at);
                p.text(run_outcome_name(run->outcome)).text(run->error).opt_int(run->exit_status).opt_int(run->signal);
                p.integer(run->tokens_in).integer(run->tokens_out).integer(run->tokens_cache_read).real(run->cost_usd);
                p.real(run->duration_sec);
                sql = run_up;
            } else if (auto *o = std::get_if<OutcomeRecord>(&op)) {
                p.text(o->issue_id).text(o->stage).text(o->json).integer(to_ms(o->recorded_at));
                sql = "INSERT INTO vik_outcomes(workflow_id, issue_id, stage, outcome_json, recorded_at_ms) VALUES ($1, $2, $3, "
                      "$4, $5) ON CONFLICT (workflow_id, issue_id, stage) DO UPDATE SET outcome_json = EXCLUDED.outcome_json, "
                      "recorded_at_ms = EXCLUDED.recorded_at_ms";
            } else if (auto *fo = std::get_if<ForgetOutcomes>(&op)) {
                p.text(fo->issue_id);
                sql = "DELETE FROM vik_outcomes WHERE workflow_id = $1 AND issue_id = $2";
            } else if (auto *sf = std::get_if<ScheduleRecord>(&op)) {
                p.text(sf->name).integer(to_ms(sf->last_fired));
                sql = "INSERT INTO vik_schedules(workflow_id, name, last_fired_ms) VALUES ($1, $2, $3) ON CONFLICT "
                      "(workflow_id, name) DO UPDATE SET last_fired_ms = EXCLUDED.last_fired_ms";
            }
            if (auto r = exec(c, sql, p); !r) return fail(r.error());
        }
        if (auto r = exec(c, "COMMIT"); !r) return fail(r.error());
        return {};
    }

    // A read on the reader connection (re-made when it broke), under read_mu.
    template <class F> auto read(const char *doing, F &&f) -> decltype(f(std::declval<PGconn *>())) {
        std::lock_guard lk(read_mu);
        if (auto ok = ensure(reader); !ok)
            return std::unexpected(error(StoreError::Kind::io, fmt::format("{}: {}", doing, ok.error())));
        return f(reader.c);
    }
};

PostgresStore::PostgresStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::expected<std::unique_ptr<PostgresStore>, StoreError>
PostgresStore::open(const std::string &conninfo, const std::string &workflow_id, PostgresOptions options) {
    auto impl = std::make_unique<Impl>();
    impl->conninfo = conninfo;
    impl->workflow_id = workflow_id;
    impl->options = options;
    impl->where = "(not connected)";
    if (workflow_id.empty())
        return std::unexpected(StoreError{StoreError::Kind::io, "the PostgreSQL store needs a workflow id (store.workflow_id)"});
    // libpq's parse errors quote the text they failed on, which may be the password: checked
    // first, and reported without it.
    char *parse_error = nullptr;
    PQconninfoOption *parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
    if (parse_error) PQfreemem(parse_error);
    if (!parsed)
        return std::unexpected(StoreError{StoreError::Kind::io,
                                          "the PostgreSQL connection string is malformed (its text is not shown: it may hold a "
                                          "password); check the variable named by store.url_env"});
    PQconninfoFree(parsed);
    if (auto ok = impl->ensure(impl->writer); !ok) {
        // No server named yet: say what the connection string points at, without its password.
        PQconninfoOption *opts = PQconninfoParse(conninfo.c_str(), nullptr);
        std::string where;
        for (const char *key : {"host", "port", "dbname"})
            for (auto *o = opts; o && o->keyword; ++o)
                if (o->val && *o->val && std::string(o->keyword) == key)
                    where += fmt::format("{}{}={}", where.empty() ? "" : " ", key, o->val);
        if (opts) PQconninfoFree(opts);
        impl->where = where.empty() ? "(default server)" : where;
        return std::unexpected(impl->error(
            StoreError::Kind::io, ok.error() + "; check the connection string (store.url_env) and that the server runs"));
    }
    impl->where = fmt::format("host={} port={} dbname={}", PQhost(impl->writer.c), PQport(impl->writer.c), PQdb(impl->writer.c));
    if (auto r = impl->migrate(); !r) return std::unexpected(r.error());
    if (options.exclusive) {
        impl->exclusive_lock = true;
        if (auto ok = impl->ensure(impl->holder); !ok) return std::unexpected(impl->error(StoreError::Kind::locked, ok.error()));
    }
    auto *raw = impl.get();
    impl->queue = std::make_unique<WriteQueue>(raw->location(), options.queue,
                                               [raw](const std::deque<WriteOp> &batch) { return raw->apply(batch); });
    return std::unique_ptr<PostgresStore>(new PostgresStore(std::move(impl)));
}

int PostgresStore::schema_version() { return static_cast<int>(migrations().size()); }

PostgresStore::~PostgresStore() {
    if (auto r = close(); !r) spdlog::error("{}", r.error().message);
    impl_->queue.reset(); // the writer thread ends before its connection closes
}

WriteQueue &PostgresStore::write_queue() const { return *impl_->queue; }
std::string PostgresStore::location() const { return impl_->location(); }

std::expected<Recovery, StoreError> PostgresStore::recover(WallTime now) {
    auto &im = *impl_;
    return im.read("recovering", [&](PGconn *c) -> std::expected<Recovery, StoreError> {
        auto fail = [&](const std::string &what) -> std::expected<Recovery, StoreError> {
            exec(c, "ROLLBACK");
            return std::unexpected(im.error(StoreError::Kind::io, what));
        };
        Params wf;
        wf.text(im.workflow_id);
        if (auto r = exec(c, "BEGIN"); !r) return fail("recovering: " + r.error());
        Recovery out;
        auto running = exec(c,
                            fmt::format("SELECT {} FROM vik_runs WHERE workflow_id = $1 AND outcome = 'running' ORDER BY "
                                        "started_at_ms, seq FOR UPDATE",
                                        run_columns),
                            wf);
        if (!running) return fail("reading running runs: " + running.error());
        for (int i = 0; i < running->rows(); ++i) {
            auto run = read_run(*running, i);
            run.outcome = RunOutcome::interrupted;
            run.ended_at = now;
            if (run.error.empty()) run.error = "interrupted: vik-host stopped while this run was running";
            out.interrupted_runs.push_back(std::move(run));
        }
        if (auto r = exec(c,
                          "UPDATE vik_runs SET outcome = 'interrupted', ended_at_ms = $2, error = CASE WHEN error = '' THEN "
                          "'interrupted: vik-host stopped while this run was running' ELSE error END WHERE workflow_id = $1 "
                          "AND outcome = 'running'",
                          Params{}.text(im.workflow_id).integer(to_ms(now)));
            !r)
            return fail("marking runs interrupted: " + r.error());
        auto claims = exec(
            c,
            fmt::format("SELECT {} FROM vik_claims WHERE workflow_id = $1 ORDER BY issue_id COLLATE \"C\", stage COLLATE \"C\"",
                        claim_columns),
            wf);
        if (!claims) return fail("reading claims: " + claims.error());
        for (int i = 0; i < claims->rows(); ++i) {
            auto cl = read_claim(*claims, i);
            switch (cl.state) {
            case ClaimState::running:
                out.interrupted_claims.push_back(std::move(cl));
                break;
            case ClaimState::blocked:
                out.blocked.push_back(std::move(cl));
                break;
            case ClaimState::retry_queued: {
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(cl.due_at.value_or(now) - now);
                out.retries.push_back(PendingRetry{std::move(cl), std::max(left, std::chrono::milliseconds{0})});
                break;
            }
            }
        }
        auto outcomes = exec(c,
                             "SELECT issue_id, stage, outcome_json, recorded_at_ms FROM vik_outcomes WHERE workflow_id = $1 "
                             "ORDER BY issue_id COLLATE \"C\", stage COLLATE \"C\"",
                             wf);
        if (!outcomes) return fail("reading outcomes: " + outcomes.error());
        for (int i = 0; i < outcomes->rows(); ++i)
            out.outcomes.push_back(OutcomeRecord{outcomes->text(i, 0), outcomes->text(i, 1), outcomes->text(i, 2),
                                                 from_ms(outcomes->integer(i, 3))});
        auto schedules =
            exec(c, "SELECT name, last_fired_ms FROM vik_schedules WHERE workflow_id = $1 ORDER BY name COLLATE \"C\"", wf);
        if (!schedules) return fail("reading schedules: " + schedules.error());
        for (int i = 0; i < schedules->rows(); ++i)
            out.schedules.push_back(ScheduleRecord{schedules->text(i, 0), from_ms(schedules->integer(i, 1))});
        if (auto r = exec(c, "COMMIT"); !r) return fail("committing recovery: " + r.error());
        return out;
    });
}

std::expected<std::vector<RunRecord>, StoreError> PostgresStore::history(const HistoryQuery &query) {
    auto &im = *impl_;
    return im.read("reading history", [&](PGconn *c) -> std::expected<std::vector<RunRecord>, StoreError> {
        Params p;
        p.text(im.workflow_id);
        if (query.issue_id) p.text(*query.issue_id);
        p.integer(static_cast<int64_t>(std::min<size_t>(query.limit, INT64_MAX)));
        auto r = exec(c,
                      fmt::format("SELECT {} FROM vik_runs WHERE workflow_id = $1 {} ORDER BY started_at_ms DESC, seq DESC "
                                  "LIMIT ${}",
                                  run_columns, query.issue_id ? "AND issue_id = $2" : "", query.issue_id ? 3 : 2),
                      p);
        if (!r) return std::unexpected(im.error(StoreError::Kind::io, "reading history: " + r.error()));
        std::vector<RunRecord> out;
        for (int i = 0; i < r->rows(); ++i)
            out.push_back(read_run(*r, i));
        return out;
    });
}

std::expected<std::vector<ClaimRecord>, StoreError> PostgresStore::claims() {
    auto &im = *impl_;
    return im.read("reading claims", [&](PGconn *c) -> std::expected<std::vector<ClaimRecord>, StoreError> {
        auto r = exec(
            c,
            fmt::format("SELECT {} FROM vik_claims WHERE workflow_id = $1 ORDER BY issue_id COLLATE \"C\", stage COLLATE \"C\"",
                        claim_columns),
            Params{}.text(im.workflow_id));
        if (!r) return std::unexpected(im.error(StoreError::Kind::io, "reading claims: " + r.error()));
        std::vector<ClaimRecord> out;
        for (int i = 0; i < r->rows(); ++i)
            out.push_back(read_claim(*r, i));
        return out;
    });
}

std::expected<Stats, StoreError> PostgresStore::stats() {
    auto &im = *impl_;
    return im.read("reading stats", [&](PGconn *c) -> std::expected<Stats, StoreError> {
        auto totals = [&](const char *key, std::vector<GroupTotals> &into) -> std::expected<void, StoreError> {
            auto sql = fmt::format(
                "SELECT {}, COUNT(*), COALESCE(SUM(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN outcome IN ('failed', 'interrupted') THEN 1 ELSE 0 END), 0), COALESCE(SUM(tokens_in), "
                "0), "
                "COALESCE(SUM(tokens_out), 0), COALESCE(SUM(tokens_cache_read), 0), COALESCE(SUM(cost_usd), 0), "
                "COALESCE(SUM(duration_sec), 0) FROM vik_runs WHERE workflow_id = $1{}",
                key ? key : "''", key ? fmt::format(" GROUP BY {} ORDER BY {} COLLATE \"C\"", key, key) : std::string());
            auto r = exec(c, sql, Params{}.text(im.workflow_id));
            if (!r) return std::unexpected(im.error(StoreError::Kind::io, "reading stats: " + r.error()));
            for (int i = 0; i < r->rows(); ++i) {
                GroupTotals g;
                g.key = r->text(i, 0);
                auto &t = g.totals;
                t.runs = r->integer(i, 1);
                t.successes = r->integer(i, 2);
                t.failures = r->integer(i, 3);
                t.tokens_in = r->integer(i, 4);
                t.tokens_out = r->integer(i, 5);
                t.tokens_cache_read = r->integer(i, 6);
                t.cost_usd = r->real(i, 7);
                t.seconds = r->real(i, 8);
                into.push_back(std::move(g));
            }
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
    });
}

} // namespace vik::store
