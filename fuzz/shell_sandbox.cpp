#include "shell_sandbox.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace vik::fuzz {

namespace fs = std::filesystem;

namespace {

constexpr int kDeadlineMs = 2000;
constexpr size_t kMaxOutput = 1 << 20;

long long now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

} // namespace

ShellSandbox::ShellSandbox() : as_root_(geteuid() == 0) {
    // The jail is built beside the fuzz target.
    jail_ = (fs::read_symlink("/proc/self/exe").parent_path() / "fuzz_shell_jail").string();
    std::string tmpl = (fs::temp_directory_path() / "vik-fuzz-shell-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
        std::perror("mkdtemp");
        std::abort();
    }
    dir_ = tmpl;
    // The script runs as nobody when we are root: it must be able to write its scratch directory.
    if (as_root_) chmod(dir_.c_str(), 0777);
    // A jail that cannot start the shell would make every oracle pass: check once that it can.
    ShellResult probe = run("/bin/sh", "printf ok > probe && cat probe");
    if (probe.out != "ok") {
        std::fprintf(stderr,
                     "the shell jail does not work (%s in %s: exit %d, output '%s'); is the directory reachable by nobody?\n",
                     jail_.c_str(), dir_.c_str(), probe.status, probe.out.c_str());
        std::abort();
    }
}

ShellSandbox::~ShellSandbox() { remove(); }

void ShellSandbox::remove() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

void ShellSandbox::empty_dir() {
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir_, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        std::error_code ignored;
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ignored);
        fs::remove_all(it->path(), ignored);
    }
}

ShellResult ShellSandbox::run(const char *shell, const std::string &script) {
    empty_dir();
    std::string dir = dir_.string();
    std::vector<char *> argv{jail_.data(), dir.data(), const_cast<char *>(shell), const_cast<char *>(script.c_str()), nullptr};
    char *envp[] = {nullptr};
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        std::perror("pipe2");
        std::abort();
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP); // its own group, killed as one
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = -1;
    int err = posix_spawn(&pid, jail_.c_str(), &fa, &attr, argv.data(), envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (err != 0) {
        std::fprintf(stderr, "cannot start %s: %s\n", jail_.c_str(), std::strerror(err));
        std::abort();
    }
    close(pipefd[1]);
    ShellResult result;
    long long deadline = now_ms() + kDeadlineMs;
    char buf[65536];
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0 || result.out.size() > kMaxOutput) {
            result.timed_out = left <= 0;
            kill(-pid, SIGKILL);
            break;
        }
        pollfd p{pipefd[0], POLLIN, 0};
        int r = poll(&p, 1, static_cast<int>(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t n = read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        result.out.append(buf, static_cast<size_t>(n));
    }
    close(pipefd[0]);
    int st = 0;
    // The shell closed stdout but may still run (`exec >&-; sleep 9`): the deadline still holds.
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (now_ms() >= deadline) {
            result.timed_out = true;
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        usleep(200);
    }
    if (result.timed_out)
        result.status = -1;
    else
        result.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (result.out.size() > kMaxOutput) result.out.resize(kMaxOutput);
    return result;
}

} // namespace vik::fuzz
