#include "store/postgres_store.hpp"

#include "store/libpq_api.hpp"

#include "util/untrusted_text.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
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
        {"leases and hosts", R"sql(
CREATE SEQUENCE vik_lease_generation;
CREATE TABLE vik_leases (
  workflow_id TEXT NOT NULL,
  issue_id    TEXT NOT NULL,
  stage       TEXT NOT NULL,
  host_id     TEXT NOT NULL,
  issue_state TEXT NOT NULL,
  generation  BIGINT NOT NULL,
  expires_at  TIMESTAMPTZ NOT NULL,
  acquired_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (workflow_id, issue_id, stage)
);
CREATE INDEX vik_leases_by_host ON vik_leases (workflow_id, host_id);
CREATE TABLE vik_hosts (
  workflow_id  TEXT NOT NULL,
  host_id      TEXT NOT NULL,
  instance     TEXT NOT NULL,
  address      TEXT NOT NULL,
  pid          BIGINT NOT NULL,
  running      BIGINT NOT NULL,
  started_at   TIMESTAMPTZ NOT NULL,
  heartbeat_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (workflow_id, host_id)
);
CREATE TABLE vik_intake (
  workflow_id  TEXT PRIMARY KEY,
  leader       TEXT NOT NULL,
  published_at TIMESTAMPTZ NOT NULL,
  pull         TEXT NOT NULL
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
// The run columns with a table alias (`r.`), for statements that join.
std::string run_columns_of(const char *alias) {
    std::string out, cols(run_columns);
    size_t start = 0;
    while (start < cols.size()) {
        size_t end = cols.find(',', start);
        std::string name = cols.substr(start, end == std::string::npos ? std::string::npos : end - start);
        name.erase(0, name.find_first_not_of(' '));
        out += fmt::format("{}{}{}", out.empty() ? "" : ", ", alias, name);
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return out;
}
// The error of a run whose host stopped (or died) while it ran.
constexpr const char *kInterruptedRun = "interrupted: vik-host stopped while this run was running";

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
        if (c) pq().PQfinish(c);
    }
};

struct Result {
    PGresult *r = nullptr;
    explicit Result(PGresult *p) : r(p) {}
    Result(Result &&o) noexcept : r(std::exchange(o.r, nullptr)) {}
    Result &operator=(Result &&) = delete;
    Result(const Result &) = delete;
    ~Result() {
        if (r) pq().PQclear(r);
    }
    int rows() const { return pq().PQntuples(r); }
    bool null(int row, int col) const { return pq().PQgetisnull(r, row, col) != 0; }
    std::string text(int row, int col) const { return std::string(pq().PQgetvalue(r, row, col), pq().PQgetlength(r, row, col)); }
    int64_t integer(int row, int col) const { return null(row, col) ? 0 : std::stoll(pq().PQgetvalue(r, row, col)); }
    double real(int row, int col) const { return null(row, col) ? 0 : std::stod(pq().PQgetvalue(r, row, col)); }
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
    // A text[] literal: every element quoted, `"` and `\` escaped.
    Params &array(const std::vector<std::string> &items) {
        std::string out = "{";
        for (const auto &item : items) {
            if (out.size() > 1) out += ',';
            out += '"';
            for (char ch : util::to_valid_utf8(item)) {
                if (ch == '\0') continue;
                if (ch == '"' || ch == '\\') out += '\\';
                out += ch;
            }
            out += '"';
        }
        values.emplace_back(out + "}");
        return *this;
    }
    Params &array(const std::vector<int64_t> &items) {
        std::string out = "{";
        for (auto v : items)
            out += (out.size() > 1 ? "," : "") + std::to_string(v);
        values.emplace_back(out + "}");
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
    Result r(values.empty() ? pq().PQexec(c, sql.c_str())
                            : pq().PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                                                nullptr, 0));
    auto status = r.r ? pq().PQresultStatus(r.r) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
    std::string message = trimmed(r.r ? pq().PQresultErrorMessage(r.r) : pq().PQerrorMessage(c));
    const char *state = r.r ? pq().PQresultErrorField(r.r, PG_DIAG_SQLSTATE) : nullptr;
    if (message.empty()) message = trimmed(pq().PQerrorMessage(c));
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

// Messages about a pair name it as operators see it in the log.
std::string pair_name(const std::string &issue_id, const std::string &stage) {
    return fmt::format("issue_id={} stage={}", issue_id, stage);
}

// The pairs of a result's first two columns.
std::vector<PairKey> pairs_of(const Result &r) {
    std::vector<PairKey> out;
    for (int i = 0; i < r.rows(); ++i)
        out.emplace_back(r.text(i, 0), r.text(i, 1));
    return out;
}

// Leases as three parallel arrays, the shape `unnest($n::text[], $m::text[], $k::bigint[])` reads.
struct LeaseArrays {
    std::vector<std::string> ids, stages;
    std::vector<int64_t> generations;
    void add(const PairKey &key, int64_t generation) {
        ids.push_back(key.first);
        stages.push_back(key.second);
        generations.push_back(generation);
    }
    bool empty() const { return ids.empty(); }
    // Appends them as three parameters.
    Params &to(Params &p) const { return p.array(ids).array(stages).array(generations); }
};

} // namespace

struct PostgresStore::Impl {
    std::string conninfo, workflow_id, where; // where: server and database, for messages
    PostgresOptions options;
    Connection writer; // the writer thread's, after open
    Connection reader; // synchronous reads, under read_mu
    Connection coord;  // lease calls, under coord_mu
    Connection keeper; // renewals and take-overs, under keeper_mu: never queued behind a big pull
    Connection leader; // holds the intake lock while this host leads the intake, under leader_mu
    std::mutex read_mu, coord_mu, keeper_mu, leader_mu;
    bool leading = false;
    std::unique_ptr<WriteQueue> queue;

    // Leases (options.host_id set). `held`: the generation of every lease this host holds, as the
    // last acquire, renew or take-over left it; writes are stamped from it when queued.
    std::string instance; // this process among hosts of the same id
    mutable std::mutex held_mu;
    std::map<PairKey, int64_t> held;
    bool took_own = false; // the first take-over (at start) also takes this host id's leases

    bool leasing() const { return !options.host_id.empty(); }
    // Takes `pairs` out of `held` (no longer renewed, no write stamped with them); their leases
    // as they were.
    LeaseArrays take_held(const std::vector<PairKey> &pairs) {
        LeaseArrays out;
        std::lock_guard lk(held_mu);
        for (const auto &key : pairs)
            if (auto it = held.find(key); it != held.end()) {
                out.add(key, it->second);
                held.erase(it);
            }
        return out;
    }
    int64_t ttl_ms() const { return options.lease_ttl.count(); }

    // Per-state limits hold across the hosts: one host at a time counts and takes (a transaction
    // lock per workflow, held until the caller's transaction ends), so two hosts cannot both fill
    // the last place. Returns, for each of `states`, the issues at work in it on any host: leased
    // with a running claim, or leased for a claim not yet written.
    std::expected<std::map<std::string, std::set<std::string>>, std::string>
    count_at_work(PGconn *c, const std::vector<std::string> &states) const {
        if (auto l = exec(c, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", Params{}.text("vik-limits:" + workflow_id));
            !l)
            return std::unexpected(l.error());
        auto counts = exec(c,
                           "SELECT l.issue_state, l.issue_id FROM vik_leases l LEFT JOIN vik_claims c ON c.workflow_id = "
                           "l.workflow_id AND c.issue_id = l.issue_id AND c.stage = l.stage WHERE l.workflow_id = $1 AND "
                           "l.expires_at > now() AND (c.issue_id IS NULL OR c.state = 'running') AND l.issue_state = "
                           "ANY($2::text[]) GROUP BY l.issue_state, l.issue_id",
                           Params{}.text(workflow_id).array(states));
        if (!counts) return std::unexpected(counts.error());
        std::map<std::string, std::set<std::string>> at_work; // state -> issues at work
        for (int i = 0; i < counts->rows(); ++i)
            at_work[counts->text(i, 0)].insert(counts->text(i, 1));
        return at_work;
    }

    // Which of `wanted` have a lease or a claim already, on any host.
    std::expected<std::set<PairKey>, std::string> held_anywhere(PGconn *c,
                                                                const std::vector<const LeaseRequest *> &wanted) const {
        std::vector<std::string> ids, stages;
        for (const auto *w : wanted) {
            ids.push_back(w->pair.first);
            stages.push_back(w->pair.second);
        }
        auto r = exec(c,
                      "SELECT p.i, p.s FROM unnest($2::text[], $3::text[]) AS p(i, s) WHERE EXISTS (SELECT 1 FROM vik_leases l "
                      "WHERE l.workflow_id = $1 AND l.issue_id = p.i AND l.stage = p.s) OR EXISTS (SELECT 1 FROM vik_claims c "
                      "WHERE c.workflow_id = $1 AND c.issue_id = p.i AND c.stage = p.s)",
                      Params{}.text(workflow_id).array(ids).array(stages));
        if (!r) return std::unexpected(r.error());
        auto pairs = pairs_of(*r);
        return std::set<PairKey>(pairs.begin(), pairs.end());
    }

    int64_t fence_of(const std::string &issue_id, const std::string &stage) const {
        if (!leasing()) return 0;
        std::lock_guard lk(held_mu);
        auto it = held.find({issue_id, stage});
        return it == held.end() ? 0 : it->second;
    }

    StoreError error(StoreError::Kind kind, const std::string &what) const {
        return StoreError{kind, fmt::format("{}: {}", location(), what)};
    }
    std::string location() const { return fmt::format("postgresql {} workflow {}", where, workflow_id); }

    // Connects `conn` if it is not connected (again, after the server went away).
    std::expected<void, std::string> ensure(Connection &conn) {
        if (conn.c && pq().PQstatus(conn.c) == CONNECTION_OK) return {};
        if (conn.c) {
            pq().PQreset(conn.c);
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
            // Several hosts: a host paused (or cut off) inside a transaction would keep its row locks
            // and stop the others' take-over of its expired leases; the server ends such a session
            // after a third of the lease time (this host's own transactions never idle that long:
            // their statements follow each other), and its locks go with it.
            std::string session = "-c statement_timeout=60000";
            if (leasing())
                session += fmt::format(" -c idle_in_transaction_session_timeout={}", std::max<int64_t>(1000, ttl_ms() / 3));
            const char *values[] = {conninfo.c_str(), timeout.c_str(), "vik-host", "10", "5", "3",
                                    "30000",          session.c_str(), nullptr};
            conn.c = pq().PQconnectdbParams(keys, values, 1);
        }
        if (!conn.c) return std::unexpected("out of memory");
        if (pq().PQstatus(conn.c) != CONNECTION_OK)
            return std::unexpected("cannot connect: " + trimmed(pq().PQerrorMessage(conn.c)));
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

    // Fencing: the leases this host holds, unexpired, on the pairs a batch writes about, by pair
    // with their generation. The rows are share-locked for the transaction, so no take-over
    // commits between the check and the writes. Every statement that locks lease rows locks them
    // in the same order (issue id, stage; "C" collation), so two of them never deadlock.
    std::expected<std::map<PairKey, int64_t>, std::string> live_leases(PGconn *c, const std::deque<WriteOp> &batch) {
        std::map<PairKey, int64_t> live;
        if (!leasing()) return live;
        std::set<PairKey> pairs;
        for (const auto &op : batch)
            std::visit(
                [&](const auto &w) {
                    using W = std::decay_t<decltype(w)>;
                    if constexpr (std::is_same_v<W, ClaimRecord> || std::is_same_v<W, ReleaseClaim> ||
                                  std::is_same_v<W, RunRecord> || std::is_same_v<W, OutcomeRecord>)
                        pairs.insert({w.issue_id, w.stage});
                },
                op);
        if (pairs.empty()) return live;
        std::vector<std::string> ids, stages;
        for (const auto &[i, st] : pairs) {
            ids.push_back(i);
            stages.push_back(st);
        }
        auto r =
            exec(c,
                 "SELECT issue_id, stage, generation FROM vik_leases WHERE workflow_id = $1 AND host_id = $2 AND expires_at > "
                 "now() AND (issue_id, stage) IN (SELECT * FROM unnest($3::text[], $4::text[])) ORDER BY issue_id COLLATE "
                 "\"C\", stage COLLATE \"C\" FOR SHARE",
                 Params{}.text(workflow_id).text(options.host_id).array(ids).array(stages));
        if (!r) return std::unexpected(r.error());
        for (int i = 0; i < r->rows(); ++i)
            live[{r->text(i, 0), r->text(i, 1)}] = r->integer(i, 2);
        return live;
    }

    // Whether a write about the pair, queued under lease generation `fence`, may be applied.
    bool fence_holds(const std::map<PairKey, int64_t> &live, const std::string &issue_id, const std::string &stage, int64_t fence,
                     const char *what) const {
        if (!leasing()) return true;
        if (auto it = live.find({issue_id, stage}); fence != 0 && it != live.end() && it->second == fence) return true;
        spdlog::warn("stale write refused {} write={} generation={}: this host no longer holds the pair's lease "
                     "(it expired or another host took it over)",
                     pair_name(issue_id, stage), what, fence);
        return false;
    }

    // One batch in one transaction, on the writer thread.
    std::expected<void, std::string> apply(const std::deque<WriteOp> &batch) {
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
            if (pq().PQstatus(c) == CONNECTION_OK) exec(c, "ROLLBACK");
            return std::unexpected(what);
        };
        std::vector<std::pair<PairKey, int64_t>> released; // leases given back with their claims
        if (auto r = exec(c, "BEGIN"); !r) return fail(r.error());
        auto live = live_leases(c, batch);
        if (!live) return fail(live.error());
        for (const auto &op : batch) {
            Params p;
            p.text(workflow_id);
            std::string sql;
            bool allowed = true;
            if (auto *cl = std::get_if<ClaimRecord>(&op)) {
                allowed = fence_holds(*live, cl->issue_id, cl->stage, cl->fence, "claim");
                p.text(cl->issue_id).text(cl->stage).text(claim_state_name(cl->state)).integer(cl->failures);
                p.integer(cl->continuations).integer(cl->runs).text(cl->retry_kind).text(cl->last_error);
                p.text(cl->issue_state).time(cl->due_at).text(cl->blocked_reason).time(cl->blocked_at);
                p.integer(to_ms(cl->updated_at)).text(cl->conversation_id).text(cl->conversation_agent);
                p.integer(cl->conversation_turns).text(cl->operator_message).text(cl->question).text(cl->routed_to);
                p.text(cl->route_reason).integer(cl->routes).boolean(cl->awaiting_approval).text(cl->gate_feedback);
                sql = claim_up;
            } else if (auto *rc = std::get_if<ReleaseClaim>(&op)) {
                allowed = fence_holds(*live, rc->issue_id, rc->stage, rc->fence, "release");
                p.text(rc->issue_id).text(rc->stage);
                sql = "DELETE FROM vik_claims WHERE workflow_id = $1 AND issue_id = $2 AND stage = $3";
                if (leasing() && allowed) {
                    // The lease goes with the claim, in the same transaction.
                    if (auto r = exec(c,
                                      "DELETE FROM vik_leases WHERE workflow_id = $1 AND issue_id = $2 AND stage = $3 AND "
                                      "host_id = $4 AND generation = $5",
                                      Params{}
                                          .text(workflow_id)
                                          .text(rc->issue_id)
                                          .text(rc->stage)
                                          .text(options.host_id)
                                          .integer(rc->fence));
                        !r)
                        return fail(r.error());
                    released.push_back({{rc->issue_id, rc->stage}, rc->fence});
                }
            } else if (auto *ri = std::get_if<ReleaseIssue>(&op)) {
                p.text(ri->issue_id);
                if (leasing()) {
                    // Only the pairs whose lease this host holds: the others are other hosts'.
                    p.text(options.host_id);
                    if (auto r = exec(c,
                                      "DELETE FROM vik_claims c USING vik_leases l WHERE c.workflow_id = $1 AND c.issue_id = $2 "
                                      "AND l.workflow_id = c.workflow_id AND l.issue_id = c.issue_id AND l.stage = c.stage AND "
                                      "l.host_id = $3 AND l.expires_at > now()",
                                      p);
                        !r)
                        return fail(r.error());
                    sql = "DELETE FROM vik_leases WHERE workflow_id = $1 AND issue_id = $2 AND host_id = $3 AND expires_at > "
                          "now() RETURNING issue_id, stage, generation";
                } else {
                    sql = "DELETE FROM vik_claims WHERE workflow_id = $1 AND issue_id = $2";
                }
            } else if (auto *run = std::get_if<RunRecord>(&op)) {
                allowed = fence_holds(*live, run->issue_id, run->stage, run->fence, "run");
                p.text(run->run_id).text(run->issue_id).text(run->stage).text(run->agent).integer(run->attempt);
                p.text(run->session_id).text(run->session_file).integer(to_ms(run->started_at)).time(run->ended_at);
                p.text(run_outcome_name(run->outcome)).text(run->error).opt_int(run->exit_status).opt_int(run->signal);
                p.integer(run->tokens_in).integer(run->tokens_out).integer(run->tokens_cache_read).real(run->cost_usd);
                p.real(run->duration_sec);
                sql = run_up;
            } else if (auto *o = std::get_if<OutcomeRecord>(&op)) {
                allowed = fence_holds(*live, o->issue_id, o->stage, o->fence, "outcome");
                p.text(o->issue_id).text(o->stage).text(o->json).integer(to_ms(o->recorded_at));
                sql = "INSERT INTO vik_outcomes(workflow_id, issue_id, stage, outcome_json, recorded_at_ms) VALUES ($1, $2, $3, "
                      "$4, $5) ON CONFLICT (workflow_id, issue_id, stage) DO UPDATE SET outcome_json = EXCLUDED.outcome_json, "
                      "recorded_at_ms = EXCLUDED.recorded_at_ms";
            } else if (auto *fo = std::get_if<ForgetOutcomes>(&op)) {
                p.text(fo->issue_id);
                sql = "DELETE FROM vik_outcomes WHERE workflow_id = $1 AND issue_id = $2";
            } else if (auto *sf = std::get_if<ScheduleRecord>(&op)) {
                p.text(sf->name).integer(to_ms(sf->last_fired));
                // Forward only: a firing recorded late (this host fired while the database was away)
                // must not take the record back behind a later firing another host claimed.
                sql =
                    "INSERT INTO vik_schedules(workflow_id, name, last_fired_ms) VALUES ($1, $2, $3) ON CONFLICT "
                    "(workflow_id, name) DO UPDATE SET last_fired_ms = EXCLUDED.last_fired_ms WHERE vik_schedules.last_fired_ms "
                    "< EXCLUDED.last_fired_ms";
            }
            if (!allowed) continue;
            auto r = exec(c, sql, p);
            if (!r) return fail(r.error());
            if (std::holds_alternative<ReleaseIssue>(op) && leasing())
                for (int i = 0; i < r->rows(); ++i)
                    released.push_back({{r->text(i, 0), r->text(i, 1)}, r->integer(i, 2)});
        }
        if (auto r = exec(c, "COMMIT"); !r) return fail(r.error());
        std::lock_guard lk(held_mu);
        for (const auto &[key, generation] : released)
            if (auto it = held.find(key); it != held.end() && it->second == generation) held.erase(it);
        return {};
    }

    // A read on the reader connection (re-made when it broke), under read_mu.
    template <class F> auto read(const char *doing, F &&f) -> decltype(f(std::declval<PGconn *>())) {
        std::lock_guard lk(read_mu);
        return on(reader, doing, f);
    }
    // Leases this host gives up: out of `held` at once, then `statement` ($1 workflow, $2 host,
    // $3..$5 the leases) on the database; a failure is only logged (the leases lapse anyway).
    void let_go(const std::vector<PairKey> &pairs, const char *doing, const char *statement) {
        LeaseArrays going = take_held(pairs);
        if (going.empty()) return;
        auto done = keep(doing, [&](PGconn *c) -> std::expected<void, StoreError> {
            if (auto r = exec(c, statement, going.to(Params{}.text(workflow_id).text(options.host_id))); !r)
                return std::unexpected(error(StoreError::Kind::io, fmt::format("{}: {}", doing, r.error())));
            return {};
        });
        if (!done) spdlog::warn("{}", done.error().message);
    }
    // The rows of a query of this workflow's (`$1`: the workflow id), one T per row.
    template <class T, class Row>
    std::expected<std::vector<T>, StoreError> list(const char *doing, const std::string &sql, Row row) {
        return read(doing, [&](PGconn *c) -> std::expected<std::vector<T>, StoreError> {
            auto r = exec(c, sql, Params{}.text(workflow_id));
            if (!r) return std::unexpected(error(StoreError::Kind::io, fmt::format("{}: {}", doing, r.error())));
            std::vector<T> out;
            for (int i = 0; i < r->rows(); ++i)
                out.push_back(row(*r, i));
            return out;
        });
    }
    // A lease call on its own connection, under coord_mu.
    template <class F> auto coordinate(const char *doing, F &&f) -> decltype(f(std::declval<PGconn *>())) {
        std::lock_guard lk(coord_mu);
        return on(coord, doing, f);
    }
    // A renewal or take-over: the calls that keep this host's leases alive have a connection of
    // their own, so no other lease call (a large pull being published) can hold them up.
    template <class F> auto keep(const char *doing, F &&f) -> decltype(f(std::declval<PGconn *>())) {
        std::lock_guard lk(keeper_mu);
        return on(keeper, doing, f);
    }
    // Runs `f` on `conn`, connected first. A connection that looked alive but was cut (the server
    // restarted since its last use) fails its first statement: `f` runs once more, reconnected.
    template <class F> auto on(Connection &conn, const char *doing, F &f) -> decltype(f(std::declval<PGconn *>())) {
        for (int attempt = 0;; ++attempt) {
            if (auto ok = ensure(conn); !ok)
                return std::unexpected(error(StoreError::Kind::io, fmt::format("{}: {}", doing, ok.error())));
            auto r = f(conn.c);
            if (r || attempt > 0 || pq().PQstatus(conn.c) == CONNECTION_OK) return r;
        }
    }

    // Writes this process's heartbeat row.
    // Writes this process's row of vik_hosts. Registering (at start) succeeds only over a row
    // whose heartbeat is a lease time old or none: false when another live process has the id.
    // A heartbeat overwrites only this process's own row (or one silent for an hour).
    std::expected<bool, std::string> write_host(PGconn *c, int64_t running, bool registering) {
        auto r =
            exec(c,
                 fmt::format("INSERT INTO vik_hosts(workflow_id, host_id, instance, address, pid, running, started_at, "
                             "heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, now(), now()) ON CONFLICT (workflow_id, host_id) "
                             "DO UPDATE SET started_at = CASE WHEN vik_hosts.instance = EXCLUDED.instance THEN "
                             "vik_hosts.started_at ELSE EXCLUDED.started_at END, instance = EXCLUDED.instance, address = "
                             "EXCLUDED.address, pid = EXCLUDED.pid, running = EXCLUDED.running, heartbeat_at = now() WHERE {} "
                             "RETURNING 1",
                             registering ? "vik_hosts.heartbeat_at <= now() - $7::bigint * interval '1 millisecond'"
                                         : "(vik_hosts.instance = EXCLUDED.instance OR vik_hosts.heartbeat_at <= now() - "
                                           "interval '1 hour') AND $7::bigint IS NOT NULL"),
                 Params{}
                     .text(workflow_id)
                     .text(options.host_id)
                     .text(instance)
                     .text(options.address)
                     .integer(static_cast<int64_t>(getpid()))
                     .integer(running)
                     .integer(ttl_ms()));
        if (!r) return std::unexpected(r.error());
        return r->rows() == 1;
    }

    // At start: another live process with this host id would share its leases. Its heartbeat is
    // waited out once (a host restarted at once after a crash); still fresh after that: refused.
    std::expected<void, StoreError> claim_host_id() {
        auto look = [&]() -> std::expected<std::optional<std::pair<double, std::string>>, StoreError> {
            return coordinate(
                "checking the host id",
                [&](PGconn *c) -> std::expected<std::optional<std::pair<double, std::string>>, StoreError> {
                    auto r = exec(c,
                                  "SELECT EXTRACT(EPOCH FROM now() - heartbeat_at)::float8, address, pid FROM vik_hosts WHERE "
                                  "workflow_id = $1 AND host_id = $2",
                                  Params{}.text(workflow_id).text(options.host_id));
                    if (!r) return std::unexpected(error(StoreError::Kind::io, "checking the host id: " + r.error()));
                    if (r->rows() == 0) return std::nullopt;
                    return std::make_pair(r->real(0, 0), fmt::format("{} pid {}", r->text(0, 1), r->text(0, 2)));
                });
        };
        double ttl_sec = static_cast<double>(ttl_ms()) / 1000;
        auto seen = look();
        if (!seen) return std::unexpected(seen.error());
        if (*seen && (*seen)->first < ttl_sec) {
            double wait = ttl_sec - (*seen)->first + 0.5;
            spdlog::warn("host id {} was seen {:.1f} s ago ({}); waiting {:.1f} s for its leases to lapse before taking them",
                         options.host_id, (*seen)->first, (*seen)->second, wait);
            std::this_thread::sleep_for(std::chrono::duration<double>(wait));
            seen = look();
            if (!seen) return std::unexpected(seen.error());
            if (*seen && (*seen)->first < ttl_sec)
                return std::unexpected(error(
                    StoreError::Kind::locked,
                    fmt::format("another vik-host runs this workflow with host id '{}' ({}; its heartbeat is {:.1f} s old); give "
                                "each host its own id (VIK_HOST_ID) or stop that one",
                                options.host_id, (*seen)->second, (*seen)->first)));
        }
        // Registered only if the row is still stale or free: two processes started together with
        // one id cannot both pass the check above.
        return coordinate("registering the host", [&](PGconn *c) -> std::expected<void, StoreError> {
            auto r = write_host(c, 0, true);
            if (!r) return std::unexpected(error(StoreError::Kind::io, "registering the host: " + r.error()));
            if (!*r)
                return std::unexpected(error(StoreError::Kind::locked,
                                             fmt::format("another vik-host runs this workflow with host id '{}' (it registered "
                                                         "just now); give each host its own id (VIK_HOST_ID)",
                                                         options.host_id)));
            return {};
        });
    }

    // Reads the claims of `pairs` and marks their runs left `running` interrupted: what a
    // take-over resumes. Inside the caller's transaction.
    std::expected<void, std::string> resume_pairs(PGconn *c, const std::vector<PairKey> &pairs, bool orphan_runs, WallTime now,
                                                  Recovery &out) {
        std::vector<std::string> ids, stages;
        for (const auto &[i, s] : pairs) {
            ids.push_back(i);
            stages.push_back(s);
        }
        Params p;
        p.text(workflow_id).array(ids).array(stages);
        auto runs =
            exec(c,
                 fmt::format("UPDATE vik_runs r SET outcome = 'interrupted', ended_at_ms = $4, error = CASE WHEN "
                             "r.error = '' THEN '{}' ELSE r.error END WHERE r.workflow_id = $1 AND r.outcome = "
                             "'running' AND ((r.issue_id, r.stage) IN (SELECT * FROM unnest($2::text[], $3::text[])){}) "
                             "RETURNING {}",
                             kInterruptedRun,
                             orphan_runs ? " OR NOT EXISTS (SELECT 1 FROM vik_leases l WHERE l.workflow_id = r.workflow_id "
                                           "AND l.issue_id = r.issue_id AND l.stage = r.stage)"
                                         : "",
                             run_columns_of("r.")),
                 Params(p).integer(to_ms(now)));
        if (!runs) return std::unexpected("marking runs interrupted: " + runs.error());
        for (int i = 0; i < runs->rows(); ++i)
            out.interrupted_runs.push_back(read_run(*runs, i));
        std::sort(out.interrupted_runs.begin(), out.interrupted_runs.end(),
                  [](const RunRecord &a, const RunRecord &b) { return a.started_at < b.started_at; });
        auto claims = exec(c,
                           fmt::format("SELECT {} FROM vik_claims WHERE workflow_id = $1 AND (issue_id, stage) IN (SELECT * FROM "
                                       "unnest($2::text[], $3::text[])) ORDER BY issue_id COLLATE \"C\", stage COLLATE \"C\"",
                                       claim_columns),
                           p);
        if (!claims) return std::unexpected("reading claims: " + claims.error());
        for (int i = 0; i < claims->rows(); ++i)
            out.add(read_claim(*claims, i), now);
        return {};
    }

    std::expected<void, std::string> read_outcomes_and_schedules(PGconn *c, Recovery &out) {
        Params wf;
        wf.text(workflow_id);
        auto outcomes = exec(c,
                             "SELECT issue_id, stage, outcome_json, recorded_at_ms FROM vik_outcomes WHERE workflow_id = $1 "
                             "ORDER BY issue_id COLLATE \"C\", stage COLLATE \"C\"",
                             wf);
        if (!outcomes) return std::unexpected("reading outcomes: " + outcomes.error());
        for (int i = 0; i < outcomes->rows(); ++i)
            out.outcomes.push_back(OutcomeRecord{outcomes->text(i, 0), outcomes->text(i, 1), outcomes->text(i, 2),
                                                 from_ms(outcomes->integer(i, 3)), 0});
        auto schedules =
            exec(c, "SELECT name, last_fired_ms FROM vik_schedules WHERE workflow_id = $1 ORDER BY name COLLATE \"C\"", wf);
        if (!schedules) return std::unexpected("reading schedules: " + schedules.error());
        for (int i = 0; i < schedules->rows(); ++i)
            out.schedules.push_back(ScheduleRecord{schedules->text(i, 0), from_ms(schedules->integer(i, 1))});
        return {};
    }

    // Takes over expired leases (and, the first time, this host id's own from before a restart)
    // and claims no lease covers; their claims and interrupted runs into `out`.
    std::expected<void, std::string> take_over(PGconn *c, WallTime now, Recovery &out,
                                               std::vector<std::pair<PairKey, int64_t>> &kept) {
        bool own = !took_own;
        Params p;
        p.text(workflow_id).text(options.host_id).integer(ttl_ms()).boolean(own);
        // This host's own expired leases wait one more lease time: the sessions it is stopping
        // for them (renewal lost them) end first. Locked in the one order first (live_leases).
        const char *which = "workflow_id = $1 AND ((host_id = $2 AND $4::boolean) OR (expires_at <= now() AND (host_id <> $2 OR "
                            "expires_at <= now() - $3::bigint * interval '1 millisecond')))";
        if (auto locked = exec(c,
                               fmt::format("SELECT 1 FROM vik_leases WHERE {} ORDER BY issue_id COLLATE \"C\", stage COLLATE "
                                           "\"C\" FOR UPDATE",
                                           which),
                               p);
            !locked)
            return std::unexpected("locking expired leases: " + locked.error());
        // The condition is checked again on each locked row, so a lease renewed meanwhile stays.
        auto taken =
            exec(c,
                 fmt::format("UPDATE vik_leases SET host_id = $2, generation = nextval('vik_lease_generation'), expires_at "
                             "= now() + $3::bigint * interval '1 millisecond', acquired_at = now() WHERE {} RETURNING "
                             "issue_id, stage, generation",
                             which),
                 p);
        if (!taken) return std::unexpected("taking over expired leases: " + taken.error());
        auto orphans =
            exec(c,
                 "INSERT INTO vik_leases(workflow_id, issue_id, stage, host_id, issue_state, generation, expires_at, "
                 "acquired_at) SELECT c.workflow_id, c.issue_id, c.stage, $2, c.issue_state, "
                 "nextval('vik_lease_generation'), now() + $3::bigint * "
                 "interval '1 millisecond', now() FROM vik_claims c WHERE c.workflow_id = $1 AND $4::boolean IS NOT NULL "
                 "AND NOT EXISTS (SELECT 1 FROM vik_leases l WHERE l.workflow_id = c.workflow_id AND l.issue_id = "
                 "c.issue_id AND l.stage = c.stage) ON CONFLICT DO NOTHING RETURNING issue_id, stage, generation",
                 p);
        if (!orphans) return std::unexpected("taking unleased claims: " + orphans.error());
        std::vector<std::pair<PairKey, int64_t>> got;
        for (const Result *r : {&*taken, &*orphans})
            for (int i = 0; i < r->rows(); ++i)
                got.push_back({{r->text(i, 0), r->text(i, 1)}, r->integer(i, 2)});
        std::vector<PairKey> pairs;
        for (const auto &g : got)
            pairs.push_back(g.first);
        if (auto ok = resume_pairs(c, pairs, own, now, out); !ok) return ok;
        // A lease taken with no claim behind it (its host died before the claim was written)
        // covers nothing: it goes.
        std::set<PairKey> with_claim;
        for (const auto *list : {&out.interrupted_claims, &out.blocked})
            for (const auto &cl : *list)
                with_claim.insert({cl.issue_id, cl.stage});
        for (const auto &r : out.retries)
            with_claim.insert({r.claim.issue_id, r.claim.stage});
        std::vector<std::string> empty_ids, empty_stages;
        for (const auto &[key, generation] : got)
            if (!with_claim.count(key)) {
                empty_ids.push_back(key.first);
                empty_stages.push_back(key.second);
            }
        if (!empty_ids.empty())
            if (auto r = exec(c,
                              "DELETE FROM vik_leases WHERE workflow_id = $1 AND host_id = $2 AND (issue_id, stage) IN (SELECT * "
                              "FROM unnest($3::text[], $4::text[]))",
                              Params{}.text(workflow_id).text(options.host_id).array(empty_ids).array(empty_stages));
                !r)
                return std::unexpected("dropping empty leases: " + r.error());
        if (!got.empty())
            spdlog::info("leases taken over host_id={} leases={} with_claims={} empty_dropped={}", options.host_id, got.size(),
                         with_claim.size(), empty_ids.size());
        for (const auto &[key, generation] : got)
            if (with_claim.count(key)) kept.push_back({key, generation}); // held once committed
        // The structured outcomes of the issues taken over (their prompts and gates read them).
        std::set<std::string> issues;
        for (const auto &[key, generation] : kept)
            issues.insert(key.first);
        if (!issues.empty()) {
            auto outcomes =
                exec(c,
                     "SELECT issue_id, stage, outcome_json, recorded_at_ms FROM vik_outcomes WHERE workflow_id = $1 AND "
                     "issue_id = ANY($2::text[]) ORDER BY issue_id COLLATE \"C\", stage COLLATE \"C\"",
                     Params{}.text(workflow_id).array(std::vector<std::string>(issues.begin(), issues.end())));
            if (!outcomes) return std::unexpected("reading outcomes: " + outcomes.error());
            for (int i = 0; i < outcomes->rows(); ++i)
                out.outcomes.push_back(OutcomeRecord{outcomes->text(i, 0), outcomes->text(i, 1), outcomes->text(i, 2),
                                                     from_ms(outcomes->integer(i, 3)), 0});
        }
        return {};
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
    if (auto api = load_libpq(); !api) return std::unexpected(StoreError{StoreError::Kind::io, api.error()});
    if (workflow_id.empty())
        return std::unexpected(StoreError{StoreError::Kind::io, "the PostgreSQL store needs a workflow id (store.workflow_id)"});
    // libpq's parse errors quote the text they failed on, which may be the password: checked
    // first, and reported without it.
    char *parse_error = nullptr;
    PQconninfoOption *parsed = pq().PQconninfoParse(conninfo.c_str(), &parse_error);
    if (parse_error) pq().PQfreemem(parse_error);
    if (!parsed)
        return std::unexpected(StoreError{StoreError::Kind::io,
                                          "the PostgreSQL connection string is malformed (its text is not shown: it may hold a "
                                          "password); check the variable named by store.url_env"});
    pq().PQconninfoFree(parsed);
    if (auto ok = impl->ensure(impl->writer); !ok) {
        // No server named yet: say what the connection string points at, without its password.
        PQconninfoOption *opts = pq().PQconninfoParse(conninfo.c_str(), nullptr);
        std::string where;
        for (const char *key : {"host", "port", "dbname"})
            for (auto *o = opts; o && o->keyword; ++o)
                if (o->val && *o->val && std::string(o->keyword) == key)
                    where += fmt::format("{}{}={}", where.empty() ? "" : " ", key, o->val);
        if (opts) pq().PQconninfoFree(opts);
        impl->where = where.empty() ? "(default server)" : where;
        return std::unexpected(impl->error(
            StoreError::Kind::io, ok.error() + "; check the connection string (store.url_env) and that the server runs"));
    }
    impl->where = fmt::format("host={} port={} dbname={}", pq().PQhost(impl->writer.c), pq().PQport(impl->writer.c),
                              pq().PQdb(impl->writer.c));
    if (auto r = impl->migrate(); !r) return std::unexpected(r.error());
    if (impl->leasing()) {
        impl->instance = fmt::format("{:x}-{:x}", static_cast<uint64_t>(getpid()),
                                     static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
        if (auto ok = impl->claim_host_id(); !ok) return std::unexpected(ok.error());
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
    if (impl_->leasing()) {
        // An orderly stop: the leases lapse now, so other hosts take the work over at once
        // rather than after a lease time, and this host leaves the list.
        auto done = impl_->coordinate("leaving", [&](PGconn *c) -> std::expected<void, StoreError> {
            Params p;
            p.text(impl_->workflow_id).text(impl_->options.host_id);
            exec(c, "UPDATE vik_leases SET expires_at = now() WHERE workflow_id = $1 AND host_id = $2", p);
            exec(c, "DELETE FROM vik_hosts WHERE workflow_id = $1 AND host_id = $2 AND instance = $3",
                 Params(p).text(impl_->instance));
            return {};
        });
        if (!done) spdlog::warn("{}", done.error().message);
    }
}

WriteQueue &PostgresStore::write_queue() const { return *impl_->queue; }
std::string PostgresStore::location() const { return impl_->location(); }
Leases *PostgresStore::leases() { return impl_->leasing() ? this : nullptr; }

void PostgresStore::record_claim(const ClaimRecord &claim) {
    ClaimRecord c = claim;
    c.fence = impl_->fence_of(c.issue_id, c.stage);
    QueuedStore::record_claim(c);
}
void PostgresStore::release_claim(const std::string &issue_id, const std::string &stage) {
    write_queue().push(ReleaseClaim{issue_id, stage, impl_->fence_of(issue_id, stage)});
}
void PostgresStore::release_issue(const std::string &issue_id) { QueuedStore::release_issue(issue_id); }
void PostgresStore::record_run(const RunRecord &run) {
    RunRecord r = run;
    r.fence = impl_->fence_of(r.issue_id, r.stage);
    QueuedStore::record_run(r);
}
void PostgresStore::record_outcome(const OutcomeRecord &outcome) {
    OutcomeRecord o = outcome;
    o.fence = impl_->fence_of(o.issue_id, o.stage);
    QueuedStore::record_outcome(o);
}

const std::string &PostgresStore::host_id() const { return impl_->options.host_id; }
std::chrono::milliseconds PostgresStore::ttl() const { return impl_->options.lease_ttl; }

std::expected<std::vector<PairKey>, StoreError> PostgresStore::acquire(const std::vector<LeaseRequest> &wanted,
                                                                       const std::map<std::string, int64_t> &state_limits) {
    auto &im = *impl_;
    if (wanted.empty()) return std::vector<PairKey>{};
    return im.coordinate("taking leases", [&](PGconn *c) -> std::expected<std::vector<PairKey>, StoreError> {
        auto fail = [&](const std::string &what) -> std::expected<std::vector<PairKey>, StoreError> {
            exec(c, "ROLLBACK");
            return std::unexpected(im.error(StoreError::Kind::io, "taking leases: " + what));
        };
        if (auto b = exec(c, "BEGIN"); !b) return fail(b.error());
        std::vector<const LeaseRequest *> asked;
        std::set<PairKey> seen;
        for (const auto &w : wanted)
            if (seen.insert(w.pair).second) asked.push_back(&w);
        std::vector<std::string> limited;
        for (const auto *w : asked)
            if (state_limits.count(w->issue_state)) limited.push_back(w->issue_state);
        if (!limited.empty()) {
            auto at_work = im.count_at_work(c, limited); // takes the lock first
            if (!at_work) return fail(at_work.error());
            // Pairs held already (leased or claimed, here or elsewhere) are left out: they must
            // not take a place the count would give to the pairs after them.
            auto busy = im.held_anywhere(c, asked);
            if (!busy) return fail(busy.error());
            std::erase_if(asked, [&](const LeaseRequest *w) { return busy->count(w->pair) > 0; });
            std::vector<const LeaseRequest *> within;
            for (const auto *w : asked) {
                auto limit = state_limits.find(w->issue_state);
                if (limit != state_limits.end()) {
                    auto &issues = (*at_work)[w->issue_state];
                    if (!issues.count(w->pair.first)) {
                        if (static_cast<int64_t>(issues.size()) >= limit->second) continue; // the state is full
                        issues.insert(w->pair.first);
                    }
                }
                within.push_back(w);
            }
            asked = std::move(within);
        }
        std::vector<std::string> ids, stages, states;
        for (const auto *w : asked) {
            ids.push_back(w->pair.first);
            stages.push_back(w->pair.second);
            states.push_back(w->issue_state);
        }
        auto r = exec(
            c,
            "INSERT INTO vik_leases(workflow_id, issue_id, stage, host_id, issue_state, generation, expires_at, "
            "acquired_at) SELECT $1, p.i, p.s, $2, p.st, nextval('vik_lease_generation'), now() + $3::bigint * interval "
            "'1 millisecond', now() FROM unnest($4::text[], $5::text[], $6::text[]) AS p(i, s, st) WHERE NOT EXISTS "
            "(SELECT 1 FROM vik_claims c WHERE c.workflow_id = $1 AND c.issue_id = p.i AND c.stage = p.s) ON CONFLICT "
            "(workflow_id, issue_id, stage) DO NOTHING RETURNING issue_id, stage, generation",
            Params{}.text(im.workflow_id).text(im.options.host_id).integer(im.ttl_ms()).array(ids).array(stages).array(states));
        if (!r) return fail(r.error());
        if (auto done = exec(c, "COMMIT"); !done) return fail(done.error());
        std::lock_guard lk(im.held_mu);
        for (int i = 0; i < r->rows(); ++i)
            im.held[{r->text(i, 0), r->text(i, 1)}] = r->integer(i, 2);
        return pairs_of(*r);
    });
}

std::expected<bool, StoreError> PostgresStore::resume(const LeaseRequest &queued,
                                                      const std::map<std::string, int64_t> &state_limits) {
    auto &im = *impl_;
    auto limit = state_limits.find(queued.issue_state);
    if (limit == state_limits.end()) return true; // no limit to take a place in
    int64_t generation = im.fence_of(queued.pair.first, queued.pair.second);
    if (generation == 0) return false; // not this host's pair (any more)
    return im.coordinate("resuming a queued claim", [&](PGconn *c) -> std::expected<bool, StoreError> {
        auto fail = [&](const std::string &what) -> std::expected<bool, StoreError> {
            exec(c, "ROLLBACK");
            return std::unexpected(im.error(StoreError::Kind::io, "resuming a queued claim: " + what));
        };
        if (auto b = exec(c, "BEGIN"); !b) return fail(b.error());
        auto at_work = im.count_at_work(c, {queued.issue_state});
        if (!at_work) return fail(at_work.error());
        const auto &issues = (*at_work)[queued.issue_state];
        if (!issues.count(queued.pair.first) && static_cast<int64_t>(issues.size()) >= limit->second) {
            exec(c, "ROLLBACK");
            return false; // the state is full across the hosts: the retry waits
        }
        // Counted as at work from now on (the queued write of the running claim follows). Only a
        // claim still queued, under this host's live lease: a newer write (blocked, released) stands.
        // If the host dies before its run starts, a take-over finds the claim running and resumes
        // it as interrupted (one attempt counted for a run that never began: rare, and bounded).
        Params pair;
        pair.text(im.workflow_id).text(queued.pair.first).text(queued.pair.second).text(im.options.host_id).integer(generation);
        auto marked = exec(c,
                           "UPDATE vik_claims c SET state = 'running' FROM vik_leases l WHERE c.workflow_id = $1 AND "
                           "c.issue_id = $2 AND c.stage = $3 AND c.state = 'retry_queued' AND l.workflow_id = c.workflow_id AND "
                           "l.issue_id = c.issue_id AND l.stage = c.stage AND l.host_id = $4 AND l.generation = $5 AND "
                           "l.expires_at > now() RETURNING 1",
                           pair);
        if (!marked) return fail(marked.error());
        if (marked->rows() == 0) {
            // Nothing marked: the claim is not queued in the database (not written yet, or running
            // already), which is fine only while the lease is still this host's.
            auto ours = exec(c,
                             "SELECT 1 FROM vik_leases l WHERE l.workflow_id = $1 AND l.issue_id = $2 AND l.stage = $3 AND "
                             "l.host_id = $4 AND l.generation = $5 AND l.expires_at > now()",
                             pair);
            if (!ours) return fail(ours.error());
            if (ours->rows() == 0) {
                exec(c, "ROLLBACK");
                return false;
            }
        }
        if (auto done = exec(c, "COMMIT"); !done) return fail(done.error());
        return true;
    });
}

void PostgresStore::release_unused(const std::vector<PairKey> &pairs) {
    // Not deleted (the database is away): the lease is no longer renewed, lapses, and a take-over
    // finds no claim behind it and drops it.
    impl_->let_go(
        pairs, "giving leases back",
        "DELETE FROM vik_leases l USING unnest($3::text[], $4::text[], $5::bigint[]) AS p(i, s, g) WHERE l.workflow_id = "
        "$1 AND l.host_id = $2 AND l.issue_id = p.i AND l.stage = p.s AND l.generation = p.g AND NOT EXISTS (SELECT 1 "
        "FROM vik_claims c WHERE c.workflow_id = $1 AND c.issue_id = p.i AND c.stage = p.s)");
}

std::expected<std::vector<PairKey>, StoreError> PostgresStore::renew(int64_t running) {
    auto &im = *impl_;
    std::map<PairKey, int64_t> mine;
    {
        std::lock_guard lk(im.held_mu);
        mine = im.held;
    }
    LeaseArrays renewing;
    for (const auto &[key, g] : mine)
        renewing.add(key, g);
    return im.keep("renewing leases", [&](PGconn *c) -> std::expected<std::vector<PairKey>, StoreError> {
        if (auto ok = im.write_host(c, running, false); !ok)
            return std::unexpected(im.error(StoreError::Kind::io, "writing the heartbeat: " + ok.error()));
        // An expired lease is not renewed: another host may be taking it over. The rows are locked
        // in the one order every lease statement uses (live_leases), then moved on.
        auto fail = [&](const std::string &what) -> std::expected<std::vector<PairKey>, StoreError> {
            exec(c, "ROLLBACK");
            return std::unexpected(im.error(StoreError::Kind::io, "renewing leases: " + what));
        };
        Params p;
        renewing.to(p.text(im.workflow_id).text(im.options.host_id).integer(im.ttl_ms()));
        if (auto b = exec(c, "BEGIN"); !b) return fail(b.error());
        if (auto locked = exec(c,
                               "SELECT 1 FROM vik_leases l, unnest($4::text[], $5::text[], $6::bigint[]) AS p(i, s, g) WHERE "
                               "l.workflow_id = $1 AND l.host_id = $2 AND l.issue_id = p.i AND l.stage = p.s AND l.generation = "
                               "p.g AND l.expires_at > now() AND $3::bigint > 0 ORDER BY l.issue_id COLLATE \"C\", l.stage "
                               "COLLATE \"C\" FOR UPDATE OF l",
                               p);
            !locked)
            return fail(locked.error());
        auto r =
            exec(c,
                 "UPDATE vik_leases l SET expires_at = now() + $3::bigint * interval '1 millisecond' FROM unnest($4::text[], "
                 "$5::text[], $6::bigint[]) AS p(i, s, g) WHERE l.workflow_id = $1 AND l.host_id = $2 AND l.issue_id = p.i "
                 "AND l.stage = p.s AND l.generation = p.g AND l.expires_at > now() RETURNING l.issue_id, l.stage",
                 p);
        if (!r) return fail(r.error());
        if (auto done = exec(c, "COMMIT"); !done) return fail(done.error());
        std::set<PairKey> renewed;
        for (auto &k : pairs_of(*r))
            renewed.insert(std::move(k));
        std::vector<PairKey> lost;
        std::lock_guard lk(im.held_mu);
        for (const auto &[key, g] : mine)
            if (!renewed.count(key))
                if (auto it = im.held.find(key); it != im.held.end() && it->second == g) {
                    im.held.erase(it);
                    lost.push_back(key);
                }
        return lost;
    });
}

void PostgresStore::let_lapse(const std::vector<PairKey> &pairs) {
    // Not renewed any more either way: if this fails, they lapse at their time.
    impl_->let_go(
        pairs, "letting leases lapse",
        "UPDATE vik_leases l SET expires_at = now() FROM unnest($3::text[], $4::text[], $5::bigint[]) AS p(i, s, g) WHERE "
        "l.workflow_id = $1 AND l.host_id = $2 AND l.issue_id = p.i AND l.stage = p.s AND l.generation = p.g");
}

std::vector<PairKey> PostgresStore::drop_all() {
    std::lock_guard lk(impl_->held_mu);
    std::vector<PairKey> out;
    for (const auto &[key, g] : impl_->held)
        out.push_back(key);
    impl_->held.clear();
    return out;
}

std::expected<Recovery, StoreError> PostgresStore::take_over(WallTime now) {
    auto &im = *impl_;
    return im.keep("taking over leases", [&](PGconn *c) -> std::expected<Recovery, StoreError> {
        Recovery out;
        auto fail = [&](const std::string &what) -> std::expected<Recovery, StoreError> {
            exec(c, "ROLLBACK");
            return std::unexpected(im.error(StoreError::Kind::io, what));
        };
        std::vector<std::pair<PairKey, int64_t>> kept;
        if (auto r = exec(c, "BEGIN"); !r) return fail("taking over leases: " + r.error());
        // A lease row locked by a transaction that does not end (its host paused inside it, until
        // the server ends that session: idle_in_transaction_session_timeout) must not hold up this
        // host's renewals, which share this connection: the take-over waits a sixth of the lease
        // time at most, and is tried again next tick.
        if (auto r = exec(c, fmt::format("SET LOCAL lock_timeout = {}", std::max<int64_t>(200, im.ttl_ms() / 6))); !r)
            return fail("taking over leases: " + r.error());
        if (auto ok = im.take_over(c, now, out, kept); !ok) return fail(ok.error());
        if (auto r = exec(c, "COMMIT"); !r) return fail("committing the take-over: " + r.error());
        im.took_own = true;
        std::lock_guard lk(im.held_mu);
        for (const auto &[key, generation] : kept)
            im.held[key] = generation;
        return out;
    });
}

std::expected<bool, StoreError> PostgresStore::claim_firing(const std::string &schedule, WallTime due) {
    auto &im = *impl_;
    return im.coordinate("recording a schedule's firing", [&](PGconn *c) -> std::expected<bool, StoreError> {
        // The row moves forward only: a host whose due time is recorded already gets no row back.
        auto r = exec(c,
                      "INSERT INTO vik_schedules(workflow_id, name, last_fired_ms) VALUES ($1, $2, $3) ON CONFLICT (workflow_id, "
                      "name) DO UPDATE SET last_fired_ms = EXCLUDED.last_fired_ms WHERE vik_schedules.last_fired_ms < "
                      "EXCLUDED.last_fired_ms RETURNING name",
                      Params{}.text(im.workflow_id).text(schedule).integer(to_ms(due)));
        if (!r) return std::unexpected(im.error(StoreError::Kind::io, "recording a schedule's firing: " + r.error()));
        return r->rows() == 1;
    });
}

std::expected<bool, StoreError> PostgresStore::lead_intake() {
    auto &im = *impl_;
    std::lock_guard lk(im.leader_mu);
    // The lock lives in the leader connection's session: while that session lives, it is held.
    if (im.leading && im.leader.c && pq().PQstatus(im.leader.c) == CONNECTION_OK && exec(im.leader.c, "SELECT 1")) return true;
    if (im.leading) spdlog::warn("intake leadership lost host_id={}: its database session ended", im.options.host_id);
    im.leading = false;
    if (auto ok = im.ensure(im.leader); !ok)
        return std::unexpected(im.error(StoreError::Kind::io, "taking the intake lead: " + ok.error()));
    auto r =
        exec(im.leader.c, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", Params{}.text("vik-intake:" + im.workflow_id));
    if (!r) return std::unexpected(im.error(StoreError::Kind::io, "taking the intake lead: " + r.error()));
    im.leading = r->text(0, 0) == "t";
    if (im.leading) spdlog::info("intake leader host_id={}: this host pulls the tracker for the cluster", im.options.host_id);
    return im.leading;
}

std::expected<void, StoreError> PostgresStore::publish_pull(const std::string &text) {
    auto &im = *impl_;
    return im.coordinate("publishing the pull", [&](PGconn *c) -> std::expected<void, StoreError> {
        auto r = exec(c,
                      "INSERT INTO vik_intake(workflow_id, leader, published_at, pull) VALUES ($1, $2, now(), $3) ON CONFLICT "
                      "(workflow_id) DO UPDATE SET leader = EXCLUDED.leader, published_at = now(), pull = EXCLUDED.pull",
                      Params{}.text(im.workflow_id).text(im.options.host_id).text(text));
        if (!r) return std::unexpected(im.error(StoreError::Kind::io, "publishing the pull: " + r.error()));
        return {};
    });
}

std::expected<std::optional<Leases::SharedPull>, StoreError> PostgresStore::shared_pull() {
    auto &im = *impl_;
    return im.coordinate("reading the shared pull", [&](PGconn *c) -> std::expected<std::optional<SharedPull>, StoreError> {
        auto r = exec(
            c, "SELECT pull, leader, EXTRACT(EPOCH FROM now() - published_at)::float8 FROM vik_intake WHERE workflow_id = $1",
            Params{}.text(im.workflow_id));
        if (!r) return std::unexpected(im.error(StoreError::Kind::io, "reading the shared pull: " + r.error()));
        if (r->rows() == 0) return std::nullopt;
        return SharedPull{r->text(0, 0), r->text(0, 1), r->real(0, 2)};
    });
}

bool PostgresStore::holds(const PairKey &pair) const { return impl_->fence_of(pair.first, pair.second) != 0; }

std::expected<std::vector<HostRecord>, StoreError> PostgresStore::hosts() {
    return impl_->list<HostRecord>("listing hosts",
                                   "SELECT host_id, address, pid, running, EXTRACT(EPOCH FROM now() - heartbeat_at)::float8, "
                                   "(EXTRACT(EPOCH FROM started_at) * "
                                   "1000)::bigint FROM vik_hosts WHERE workflow_id = $1 ORDER BY host_id COLLATE \"C\"",
                                   [](const Result &r, int i) {
                                       return HostRecord{r.text(i, 0),    r.text(i, 1), r.integer(i, 2),
                                                         r.integer(i, 3), r.real(i, 4), from_ms(r.integer(i, 5))};
                                   });
}

std::expected<std::vector<LeaseRecord>, StoreError> PostgresStore::lease_list() {
    return impl_->list<LeaseRecord>(
        "listing leases",
        "SELECT issue_id, stage, host_id, generation, EXTRACT(EPOCH FROM expires_at - now())::float8 FROM vik_leases WHERE "
        "workflow_id = $1 ORDER BY issue_id COLLATE \"C\", stage COLLATE \"C\"",
        [](const Result &r, int i) {
            return LeaseRecord{r.text(i, 0), r.text(i, 1), r.text(i, 2), r.integer(i, 3), r.real(i, 4)};
        });
}

std::expected<Recovery, StoreError> PostgresStore::recover(WallTime now) {
    auto &im = *impl_;
    if (im.leasing()) {
        // Several hosts: only what this host held before a restart, what expired and what no
        // lease covers is this host's to resume.
        auto out = take_over(now);
        if (!out) return out;
        out->outcomes.clear(); // all of them, below
        if (auto ok = im.read("recovering",
                              [&](PGconn *c) -> std::expected<void, StoreError> {
                                  if (auto r = im.read_outcomes_and_schedules(c, *out); !r)
                                      return std::unexpected(im.error(StoreError::Kind::io, r.error()));
                                  return {};
                              });
            !ok)
            return std::unexpected(ok.error());
        return out;
    }
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
            if (run.error.empty()) run.error = kInterruptedRun;
            out.interrupted_runs.push_back(std::move(run));
        }
        if (auto r =
                exec(c,
                     fmt::format("UPDATE vik_runs SET outcome = 'interrupted', ended_at_ms = $2, error = CASE WHEN error = '' "
                                 "THEN '{}' ELSE error END WHERE workflow_id = $1 AND outcome = 'running'",
                                 kInterruptedRun),
                     Params{}.text(im.workflow_id).integer(to_ms(now)));
            !r)
            return fail("marking runs interrupted: " + r.error());
        auto claims = exec(
            c,
            fmt::format("SELECT {} FROM vik_claims WHERE workflow_id = $1 ORDER BY issue_id COLLATE \"C\", stage COLLATE \"C\"",
                        claim_columns),
            wf);
        if (!claims) return fail("reading claims: " + claims.error());
        for (int i = 0; i < claims->rows(); ++i)
            out.add(read_claim(*claims, i), now);
        if (auto r = im.read_outcomes_and_schedules(c, out); !r) return fail(r.error());
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
