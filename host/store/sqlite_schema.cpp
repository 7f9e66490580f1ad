#include "store/sqlite_schema.hpp"

namespace vik::store {

const std::vector<SqliteMigration> &sqlite_migrations() {
    static const std::vector<SqliteMigration> steps = {
        {"claims and runs", R"sql(
CREATE TABLE claims (
  issue_id       TEXT NOT NULL,
  stage          TEXT NOT NULL,
  state          TEXT NOT NULL CHECK (state IN ('running', 'retry_queued', 'blocked')),
  failures       INTEGER NOT NULL,
  continuations  INTEGER NOT NULL,
  runs           INTEGER NOT NULL,
  retry_kind     TEXT NOT NULL,
  last_error     TEXT NOT NULL,
  issue_state    TEXT NOT NULL,
  due_at_ms      INTEGER,
  blocked_reason TEXT NOT NULL,
  blocked_at_ms  INTEGER,
  updated_at_ms  INTEGER NOT NULL,
  PRIMARY KEY (issue_id, stage)
) WITHOUT ROWID;
CREATE TABLE runs (
  run_id            TEXT PRIMARY KEY,
  issue_id          TEXT NOT NULL,
  stage             TEXT NOT NULL,
  agent             TEXT NOT NULL,
  attempt           INTEGER NOT NULL,
  session_id        TEXT NOT NULL,
  session_file      TEXT NOT NULL,
  started_at_ms     INTEGER NOT NULL,
  ended_at_ms       INTEGER,
  outcome           TEXT NOT NULL,
  error             TEXT NOT NULL,
  exit_status       INTEGER,
  signal            INTEGER,
  tokens_in         INTEGER NOT NULL,
  tokens_out        INTEGER NOT NULL,
  tokens_cache_read INTEGER NOT NULL,
  cost_usd          REAL,
  duration_sec      REAL NOT NULL
);
CREATE INDEX runs_by_start ON runs (started_at_ms);
CREATE INDEX runs_by_issue ON runs (issue_id, started_at_ms);
CREATE INDEX runs_running ON runs (outcome) WHERE outcome = 'running';
)sql"},
        {"conversations and parked claims", R"sql(
ALTER TABLE claims ADD COLUMN conversation_id TEXT NOT NULL DEFAULT '';
ALTER TABLE claims ADD COLUMN conversation_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE claims ADD COLUMN conversation_turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE claims ADD COLUMN operator_message TEXT NOT NULL DEFAULT '';
ALTER TABLE claims ADD COLUMN question TEXT NOT NULL DEFAULT '';
)sql"},
        {"failure routing", R"sql(
ALTER TABLE claims ADD COLUMN routed_to TEXT NOT NULL DEFAULT '';
ALTER TABLE claims ADD COLUMN route_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE claims ADD COLUMN routes INTEGER NOT NULL DEFAULT 0;
)sql"},
        {"human gates", R"sql(
ALTER TABLE claims ADD COLUMN awaiting_approval INTEGER NOT NULL DEFAULT 0;
ALTER TABLE claims ADD COLUMN gate_feedback TEXT NOT NULL DEFAULT '';
)sql"},
        {"structured outcomes", R"sql(
CREATE TABLE outcomes (
  issue_id       TEXT NOT NULL,
  stage          TEXT NOT NULL,
  outcome_json   TEXT NOT NULL,
  recorded_at_ms INTEGER NOT NULL,
  PRIMARY KEY (issue_id, stage)
) WITHOUT ROWID;
)sql"},
        {"schedules", R"sql(
CREATE TABLE schedules (
  name          TEXT PRIMARY KEY,
  last_fired_ms INTEGER NOT NULL
) WITHOUT ROWID;
)sql"},
    };
    return steps;
}

} // namespace vik::store
