#include "store/open_store.hpp"

#include "security/secret_environment.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"

#include <optional>

namespace vik::store {

bool store_exists(const StoreChoice &choice) {
    if (choice.kind == "postgres") return true;
    std::error_code ec;
    return std::filesystem::exists(choice.sqlite_file, ec);
}

namespace {

std::expected<std::unique_ptr<PostgresStore>, StoreError> open_postgres(const StoreChoice &choice) {
    // The URL may hold a password: it is read from the host's environment (the withheld secrets
    // included), never from the workflow file, and never printed.
    std::optional<std::string> url;
    for (const auto &[k, v] : security::full_environment())
        if (k == choice.url_env) url = v;
    if (!url || url->empty())
        return std::unexpected(StoreError{StoreError::Kind::io, "the postgres store's connection URL is not set: export " +
                                                                    choice.url_env +
                                                                    " (named by store.url_env) before starting vik-host"});
    PostgresOptions options;
    options.host_id = choice.host_id;
    options.address = choice.address;
    options.lease_ttl = choice.lease_ttl;
    return PostgresStore::open(*url, choice.workflow_id, options);
}

} // namespace

std::expected<ClusterView, StoreError> read_cluster(const StoreChoice &choice) {
    if (choice.kind != "postgres") return ClusterView{};
    StoreChoice reader = choice;
    reader.host_id.clear(); // reading takes no part in the cluster
    auto s = open_postgres(reader);
    if (!s) return std::unexpected(s.error());
    ClusterView view;
    auto hosts = (*s)->hosts();
    if (!hosts) return std::unexpected(hosts.error());
    auto leases = (*s)->lease_list();
    if (!leases) return std::unexpected(leases.error());
    view.hosts = std::move(*hosts);
    view.leases = std::move(*leases);
    return view;
}

std::expected<std::unique_ptr<Store>, StoreError> open_store(const StoreChoice &choice) {
    if (choice.kind == "postgres") {
        auto s = open_postgres(choice);
        if (!s) return std::unexpected(s.error());
        return std::unique_ptr<Store>(std::move(*s));
    }
    auto s = SqliteStore::open(choice.sqlite_file);
    if (!s) return std::unexpected(s.error());
    return std::unique_ptr<Store>(std::move(*s));
}

} // namespace vik::store
