#pragma once
// The SQLite schema as a list of forward migrations: step i takes `PRAGMA user_version` from i to
// i + 1. Steps are only ever appended, never edited, so every database can be brought forward.

#include <string>
#include <vector>

namespace vik::store {

struct SqliteMigration {
    const char *description;
    std::string sql;
};

const std::vector<SqliteMigration> &sqlite_migrations();

} // namespace vik::store
