#include "support/test_support.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <signal.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace vik::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("vik-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(path);
    path = fs::canonical(path);
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
}

std::string shell_quote(const std::string &s) {
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

void write_file(const fs::path &path, const std::string &text) {
    fs::create_directories(path.parent_path());
    std::ofstream o(path, std::ios::binary | std::ios::trunc);
    o << text;
}

std::string read_file(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

namespace {
pid_t spawn_host(const std::vector<std::string> &args, const fs::path &cwd, const std::vector<std::string> &env,
                 const fs::path &out, const fs::path &err) {
    std::fflush(stdout); // or the child would write the parent's buffered output again
    std::fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        // A test process that dies without its destructors (a ctest timeout, a signal) takes its
        // hosts with it; a host's own agents die with the host (its orphan guard).
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(125);
        if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
        for (const auto &kv : env)
            putenv(const_cast<char *>(kv.c_str()));
        FILE *o = freopen(out.c_str(), "w", stdout);
        FILE *e = freopen(err.c_str(), "w", stderr);
        FILE *i = freopen("/dev/null", "r", stdin);
        (void)o, (void)e, (void)i;
        std::vector<char *> argv;
        std::string bin = VIK_TEST_HOST_BINARY;
        argv.push_back(bin.data());
        std::vector<std::string> copy = args;
        for (auto &a : copy)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(bin.c_str(), argv.data());
        _exit(127);
    }
    return pid;
}
} // namespace

std::unique_ptr<HostProcess> start_host(const std::vector<std::string> &args, const fs::path &cwd,
                                        const std::vector<std::string> &env) {
    auto h = std::make_unique<HostProcess>();
    h->out = h->io / "stdout";
    h->err = h->io / "stderr";
    h->pid = spawn_host(args, cwd, env, h->out, h->err);
    return h;
}

int HostProcess::wait(std::chrono::milliseconds timeout) {
    if (pid <= 0) return -1;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            pid = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
}

void HostProcess::signal(int sig) const {
    if (pid > 0) ::kill(pid, sig);
}

std::string HostProcess::stdout_text() const { return read_file(out); }

HostProcess::~HostProcess() {
    if (pid > 0) {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
    }
}

CommandResult run_host(const std::vector<std::string> &args, const fs::path &cwd, const std::vector<std::string> &env,
                       int timeout_sec) {
    TempDir io;
    fs::path out = io / "stdout", err = io / "stderr";
    pid_t pid = spawn_host(args, cwd, env, out, err);
    CommandResult r;
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_sec);
    for (;;) {
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        if (std::chrono::steady_clock::now() > deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            r.err = "[test harness: timed out after " + std::to_string(timeout_sec) + " s]\n";
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_file(out);
    r.err += read_file(err);
    return r;
}

bool wait_until(const std::function<bool()> &cond, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return cond();
}

bool process_with_marker_alive(const std::string &marker) {
    for (auto &e : fs::directory_iterator("/proc")) {
        std::string name = e.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::string cmd = read_file(e.path() / "cmdline");
        for (char &c : cmd)
            if (c == '\0') c = ' ';
        if (cmd.find(marker) == std::string::npos) continue;
        // Zombies are dead already.
        std::string stat = read_file(e.path() / "stat");
        auto close = stat.rfind(')');
        if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z') continue;
        return true;
    }
    return false;
}

fs::path plugin_dir() { return VIK_TEST_PLUGIN_DIR; }
fs::path test_plugin_root() { return VIK_TEST_PLUGIN_ROOT; }
fs::path source_dir() { return VIK_TEST_SOURCE_DIR; }

} // namespace vik::test
