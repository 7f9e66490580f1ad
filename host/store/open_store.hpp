#pragma once
// Opens the store a workflow chose (`store:` in workflow.yml): the embedded SQLite file, or a
// PostgreSQL database shared by several hosts. The composition root and the operator commands
// (history, stats, dry run) go through here, so they always read where `run` writes.

#include "store/leases.hpp"
#include "store/store.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace vik::store {

struct StoreChoice {
    std::string kind = "sqlite";       // sqlite | postgres
    std::filesystem::path sqlite_file; // sqlite: the database file
    std::string url_env;               // postgres: the environment variable holding the connection URL
    std::string workflow_id;           // postgres: this workflow's key
    // postgres, the running host's store: its id among the hosts of the workflow (leases.hpp),
    // what operators see beside it, and store.lease_ttl_sec. Empty for readers (history, stats).
    std::string host_id, address;
    std::chrono::milliseconds lease_ttl{30000};
};

// Whether the store already exists (a SQLite file; a PostgreSQL database always "exists": its
// rows for this workflow may simply be none). Commands that only read treat a missing store as
// empty history rather than creating one.
bool store_exists(const StoreChoice &choice);

std::expected<std::unique_ptr<Store>, StoreError> open_store(const StoreChoice &choice);

// Several hosts on one workflow (a postgres store): the hosts and who holds which lease, as the
// database has them. Empty lists for a SQLite store.
struct ClusterView {
    std::vector<HostRecord> hosts;
    std::vector<LeaseRecord> leases;
};
std::expected<ClusterView, StoreError> read_cluster(const StoreChoice &choice);

} // namespace vik::store
