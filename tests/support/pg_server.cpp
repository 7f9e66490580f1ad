#include "support/pg_server.hpp"

#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char **environ;

namespace vik::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const fs::path pg_bin = "/usr/lib/postgresql/15/bin";
constexpr uid_t nobody = 65534; // Debian's nobody:nogroup, present on every system
constexpr auto child_timeout = 60s;

bool as_root() { return geteuid() == 0; }

std::string slurp(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string tail(const std::string &s, size_t n = 4000) { return s.size() <= n ? s : "[...]" + s.substr(s.size() - n); }

// Whether pid is a live (not zombie) process named postgres. Checking the name as well keeps a
// stale postmaster.pid whose number now belongs to another process from getting it killed.
bool postgres_alive(pid_t pid) {
    if (pid <= 1) return false;
    std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    if (stat.find("(postgres)") == std::string::npos || close == std::string::npos || close + 2 >= stat.size()) return false;
    return stat[close + 2] != 'Z'; // a killed postmaster stays a zombie when nothing reaps it
}

// Every path component must let "others" through: when root, the server runs as nobody and has to
// reach its directory (and clients running as other users its socket).
bool searchable_by_others(fs::path p) {
    for (;; p = p.parent_path()) {
        struct stat st;
        if (::stat(p.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
        if (p == p.parent_path()) return true;
    }
}

// $TMPDIR when it is short and plain, else /tmp. Short: a Unix socket path has at most 107 bytes
// (<dir>/.s.PGSQL.5432). Plain: the path goes unquoted into postgresql.conf's directory list and
// into conninfo strings.
fs::path scratch_parent() {
    const char *t = std::getenv("TMPDIR");
    if (!t || t[0] != '/' || std::strlen(t) > 64) return "/tmp";
    for (const char *c = t; *c; ++c)
        if (!std::isalnum(static_cast<unsigned char>(*c)) && !std::strchr("/._-", *c)) return "/tmp";
    if (as_root() && !searchable_by_others(t)) return "/tmp";
    return t;
}

struct ChildResult {
    std::string how; // empty on success, else "exited with 1", "timed out after 60 s", ...
    std::string output;
};

// Runs argv (absolute path first) in cwd with stdout and stderr captured, as nobody when root, with
// a deadline after which its process group is killed. fork/exec with an argv vector: no shell, so
// paths need no quoting.
ChildResult run_child(const std::vector<std::string> &argv, const fs::path &cwd) {
    // Prepared before fork: the test process may have threads, so the child may only make
    // async-signal-safe calls until exec.
    std::vector<std::string> args = argv;
    std::vector<char *> cargs;
    for (auto &a : args)
        cargs.push_back(a.data());
    cargs.push_back(nullptr);
    // PGHOST, PGPORT, PGDATA, PGOPTIONS... from the caller's environment must not redirect the tools.
    std::vector<char *> envp;
    for (char **e = environ; *e; ++e)
        if (std::strncmp(*e, "PG", 2) != 0) envp.push_back(*e);
    envp.push_back(nullptr);
    const bool drop = as_root();
    const char *dir = cwd.c_str();

    FILE *out = std::tmpfile();
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!out || devnull < 0) {
        if (out) std::fclose(out);
        if (devnull >= 0) ::close(devnull);
        throw std::runtime_error("PgServer: cannot create a capture file: " + std::string(std::strerror(errno)));
    }
    std::fflush(nullptr); // or the child would flush the parent's buffered output again
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); // so a timeout kills pg_ctl together with the shell it runs
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        signal(SIGPIPE, SIG_DFL);
        dup2(devnull, 0);
        dup2(fileno(out), 1);
        dup2(fileno(out), 2);
        // The postmaster inherits whatever pg_ctl has open: it must not keep the test's pipes or
        // sockets (another test may be waiting for their EOF).
        close_range(3, ~0U, 0);
        if (drop &&
            (setgroups(0, nullptr) != 0 || setresgid(nobody, nobody, nobody) != 0 || setresuid(nobody, nobody, nobody) != 0)) {
            static const char msg[] = "PgServer: cannot switch to uid/gid 65534\n";
            (void)!write(2, msg, sizeof msg - 1);
            _exit(126);
        }
        // Also after the switch: PostgreSQL's tools fail when they cannot access their cwd.
        if (chdir(dir) != 0) _exit(126);
        execve(cargs[0], cargs.data(), envp.data());
        static const char msg[] = "PgServer: exec failed\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(127);
    }
    int fork_errno = errno;
    ::close(devnull);

    ChildResult r;
    if (pid < 0) {
        std::fclose(out);
        r.how = "could not be started: " + std::string(std::strerror(fork_errno));
        return r;
    }
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + child_timeout;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) { // reaped by someone else: the outcome is unknown
            r.how = "could not be waited for: " + std::string(std::strerror(errno));
            break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            r.how = "timed out after " + std::to_string(child_timeout.count()) + " s";
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    if (r.how.empty() && WIFSIGNALED(status)) r.how = "was killed by signal " + std::to_string(WTERMSIG(status));
    if (r.how.empty() && WEXITSTATUS(status) != 0) r.how = "exited with " + std::to_string(WEXITSTATUS(status));

    std::rewind(out);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, out)) > 0)
        r.output.append(buf, n);
    std::fclose(out);
    return r;
}

// A libpq conninfo value: quoted when it contains anything special.
std::string conninfo_value(const std::string &v) {
    if (!v.empty() && v.find_first_of(" \t\n'\\") == std::string::npos) return v;
    std::string q = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\') q += '\\';
        q += c;
    }
    return q + "'";
}

} // namespace

std::optional<std::string> PgServer::unavailable() {
    for (const char *tool : {"initdb", "pg_ctl", "postgres", "createdb"})
        if (access((pg_bin / tool).c_str(), X_OK) != 0)
            return "PostgreSQL 15 is not installed (no " + (pg_bin / tool).string() + "; apt-get install postgresql-15)";
    return std::nullopt;
}

PgServer::PgServer() {
    if (auto why = unavailable()) throw std::runtime_error("PgServer: " + *why);
    std::string tmpl = (scratch_parent() / "vikpg-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("PgServer: cannot create " + tmpl + ": " + std::strerror(errno));
    dir_ = tmpl;
    try {
        start_watchdog();
        // 0755: clients running as other users must reach the socket (the data directory itself
        // is 0700, made so by initdb).
        fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                                  fs::perms::others_exec);
        if (as_root() && ::chown(dir_.c_str(), nobody, nobody) != 0)
            throw std::runtime_error("PgServer: cannot chown " + dir_.string() + " to 65534: " + std::strerror(errno));
        run("initdb", {(pg_bin / "initdb").string(), "-D", (dir_ / "data").string(), "-A", "trust", "-U", "vik", "--no-sync",
                       "-E", "UTF8", "--locale=C", "--no-instructions"});
        // In the configuration rather than in `pg_ctl -o`: start() after stop() gets the same
        // settings, and pg_ctl pastes -o into a shell command line, which would need quoting.
        std::ofstream conf(dir_ / "data" / "postgresql.conf", std::ios::app);
        conf << "\n# vik::test::PgServer: only a Unix socket in the scratch directory; no durability needed.\n"
             << "listen_addresses = ''\n"
             << "unix_socket_directories = '" << dir_.string() << "'\n"
             << "port = " << port << "\n"
             << "fsync = off\n"
             << "full_page_writes = off\n"
             << "synchronous_commit = off\n";
        conf.close();
        if (!conf) throw std::runtime_error("PgServer: cannot append to " + (dir_ / "data/postgresql.conf").string());
        start();
    } catch (...) {
        cleanup();
        throw;
    }
}

PgServer::~PgServer() { cleanup(); }

std::string PgServer::run(const std::string &step, const std::vector<std::string> &argv) const {
    ChildResult r = run_child(argv, dir_);
    if (r.how.empty()) return r.output;
    std::string cmd = as_root() ? "(as uid 65534)" : "";
    for (const auto &a : argv)
        cmd += (cmd.empty() ? "" : " ") + a;
    throw std::runtime_error("PgServer: " + step + " failed: `" + cmd + "` " + r.how + ":\n" + tail(r.output));
}

std::string PgServer::conninfo(const std::string &dbname) const {
    return "host=" + dir_.string() + " port=" + std::to_string(port) + " user=vik dbname=" + conninfo_value(dbname);
}

void PgServer::create_database(const std::string &name) {
    run("createdb", {(pg_bin / "createdb").string(), "-h", dir_.string(), "-p", std::to_string(port), "-U", "vik", "--", name});
}

void PgServer::start() {
    if (running()) return;
    fs::path log = dir_ / "server.log";
    try {
        run("start",
            {(pg_bin / "pg_ctl").string(), "start", "-w", "-t", "30", "-D", (dir_ / "data").string(), "-l", log.string()});
    } catch (const std::runtime_error &e) {
        throw std::runtime_error(std::string(e.what()) + "\n--- " + log.string() + " (end) ---\n" + tail(slurp(log)));
    }
}

void PgServer::stop() {
    if (!running()) return;
    run("stop", {(pg_bin / "pg_ctl").string(), "stop", "-m", "fast", "-w", "-t", "30", "-D", (dir_ / "data").string()});
}

bool PgServer::running() const { return postgres_alive(postmaster_pid()); }

pid_t PgServer::postmaster_pid() const {
    std::ifstream in(dir_ / "data" / "postmaster.pid");
    long pid = -1;
    if (!(in >> pid) || pid <= 0) return -1;
    return static_cast<pid_t>(pid);
}

// The postmaster cannot be told to die with its client, so a watchdog does it: a shell in its own
// session whose stdin is a pipe whose only write end the test process holds (O_CLOEXEC keeps it
// out of other children). EOF on it means the test process is gone; the watchdog then shuts the
// server down (SIGQUIT: immediate shutdown) and removes the directory. The destructor removes the
// directory before closing the pipe, so normally the watchdog finds nothing to do.
void PgServer::start_watchdog() {
    static const char script[] = R"sh(cat >/dev/null
pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)
case "$pid" in ''|*[!0-9]*) pid= ;; esac
alive() { [ -n "$pid" ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = postgres ]; }
if alive; then
  kill -QUIT "$pid"
  n=0; while alive && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
  alive && kill -KILL "$pid"
fi
rm -rf "$1")sh";
    std::vector<std::string> args = {"/bin/sh", "-c", script, "vik-pg-watchdog", dir_.string()};
    std::vector<char *> cargs;
    for (auto &a : args)
        cargs.push_back(a.data());
    cargs.push_back(nullptr);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("PgServer: pipe: " + std::string(std::strerror(errno)));
    int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    std::fflush(nullptr);
    pid_t pid = devnull < 0 ? -1 : fork();
    if (pid == 0) {
        setsid(); // out of the test's process group: killing that group must not kill the watchdog
        dup2(fds[0], 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        close_range(3, ~0U, 0);
        if (chdir("/") != 0) _exit(126);
        execve(cargs[0], cargs.data(), environ);
        _exit(127);
    }
    int err = errno;
    ::close(fds[0]);
    if (devnull >= 0) ::close(devnull);
    if (pid < 0) {
        ::close(fds[1]);
        throw std::runtime_error("PgServer: cannot start the watchdog: " + std::string(std::strerror(err)));
    }
    watchdog_fd_ = fds[1];
    watchdog_pid_ = pid;
}

void PgServer::cleanup() noexcept {
    if (dir_.empty()) return;
    try {
        stop();
    } catch (...) {
        try { // immediate: no waiting for sessions or a checkpoint
            run("immediate stop",
                {(pg_bin / "pg_ctl").string(), "stop", "-m", "immediate", "-w", "-t", "30", "-D", (dir_ / "data").string()});
        } catch (...) {
        }
    }
    if (pid_t pid = postmaster_pid(); postgres_alive(pid)) {
        ::kill(pid, SIGKILL);
        for (int i = 0; i < 250 && postgres_alive(pid); ++i)
            std::this_thread::sleep_for(20ms);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
    if (watchdog_fd_ >= 0) ::close(watchdog_fd_);
    if (watchdog_pid_ > 0) {
        int status;
        for (int i = 0; i < 500 && waitpid(watchdog_pid_, &status, WNOHANG) == 0; ++i)
            std::this_thread::sleep_for(10ms);
        if (waitpid(watchdog_pid_, &status, WNOHANG) == 0) {
            ::kill(watchdog_pid_, SIGKILL);
            waitpid(watchdog_pid_, &status, 0);
        }
    }
    dir_.clear();
    watchdog_fd_ = watchdog_pid_ = -1;
}

} // namespace vik::test
