#pragma once
// A private, throwaway PostgreSQL 15 server for tests (Debian's postgresql-15 package).
//
// Each PgServer owns a scratch directory (/tmp/vikpg-XXXXXX, or under $TMPDIR when that is short
// and plain) holding the cluster (data/), its log (server.log) and its Unix socket. The server
// listens on no TCP address at all, only on <dir>/.s.PGSQL.5432, so any number of servers can run
// side by side without port clashes and nothing outside the machine can reach them.
// Authentication is "trust"; the superuser is "vik".
//
// PostgreSQL refuses to run as root: when the test runs as root, initdb, pg_ctl and createdb run
// as nobody (uid/gid 65534) and the scratch directory belongs to nobody.
//
// Lifetime: the destructor stops the server and removes the directory. A test process that dies
// without running destructors (SIGKILL, a crash, a ctest timeout) cannot stop the server itself,
// so each PgServer also starts a small watchdog (/bin/sh, in its own session) that waits for the
// test process to go away and then shuts the server down (immediate mode) and removes the
// directory. If even that fails, leftovers are `pgrep -a postgres` processes whose command line
// names a /tmp/vikpg-* directory, and those directories.

#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vik::test {

class PgServer {
  public:
    // Why no server can be started here (PostgreSQL 15 binaries missing), or nullopt. Tests SKIP
    // with this reason.
    static std::optional<std::string> unavailable();

    // Creates the cluster and starts the server; throws std::runtime_error (naming the step, the
    // command and its output) and leaves nothing behind on failure.
    PgServer();
    ~PgServer();
    PgServer(const PgServer &) = delete;
    PgServer &operator=(const PgServer &) = delete;

    // A libpq connection string, e.g. "host=/tmp/vikpg-Ab12Cd port=5432 user=vik dbname=postgres".
    std::string conninfo(const std::string &dbname = "postgres") const;
    void create_database(const std::string &name);

    // Fast shutdown (open sessions are rolled back); does nothing when already stopped.
    void stop();
    // Starts the server again on the same data directory; does nothing when running.
    void start();
    bool running() const;
    // The postmaster's process id (first line of data/postmaster.pid), or -1 when there is none.
    pid_t postmaster_pid() const;

    const std::filesystem::path &dir() const { return dir_; }
    // With no TCP listener the port only names the socket file (.s.PGSQL.5432).
    static constexpr int port = 5432;

  private:
    std::string run(const std::string &step, const std::vector<std::string> &argv) const;
    void start_watchdog();
    void cleanup() noexcept;

    std::filesystem::path dir_;
    int watchdog_fd_ = -1;
    pid_t watchdog_pid_ = -1;
};

} // namespace vik::test
