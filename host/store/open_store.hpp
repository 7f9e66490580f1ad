#pragma once
// Opens the store a workflow chose (`store:` in workflow.yml): the embedded SQLite file, or a
// PostgreSQL database shared by several hosts. The composition root and the operator commands
// (history, stats, dry run) go through here, so they always read where `run` writes.

#include "store/store.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace vik::store {

struct StoreChoice {
    std::string kind = "sqlite";       // sqlite | postgres
    std::filesystem::path sqlite_file; // sqlite: the database file
    std::string url_env;               // postgres: the environment variable holding the connection URL
    std::string workflow_id;           // postgres: this workflow's key
    bool exclusive = false;            // the running host's store: one host per workflow (postgres)
};

// Whether the store already exists (a SQLite file; a PostgreSQL database always "exists": its
// rows for this workflow may simply be none). Commands that only read treat a missing store as
// empty history rather than creating one.
bool store_exists(const StoreChoice &choice);

std::expected<std::unique_ptr<Store>, StoreError> open_store(const StoreChoice &choice);

} // namespace vik::store
