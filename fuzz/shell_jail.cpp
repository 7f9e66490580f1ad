// fuzz_shell_jail DIR SHELL SCRIPT: runs `SHELL -c SCRIPT` in DIR, fenced in (shell_sandbox.hpp).
// A separate small program, built without sanitizers or libFuzzer, so the fuzz target can start
// it with posix_spawn (no copy of its own large address space per run) and it forks cheaply.
#include <cerrno>
#include <grp.h>
#include <sched.h>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

void limit(int resource, rlim_t value) {
    rlimit r{value, value};
    setrlimit(resource, &r);
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 4) return 120;
    // Best effort: without CAP_SYS_ADMIN the script still runs, only less fenced in.
    bool own_pid_ns = unshare(CLONE_NEWNET | CLONE_NEWPID) == 0 || unshare(CLONE_NEWPID) == 0;
    pid_t shell_pid = own_pid_ns ? fork() : 0;
    if (shell_pid < 0) return 126;
    if (shell_pid > 0) {
        // The shell is init of the new PID namespace: when it exits, everything it started dies.
        close(1);
        int st = 0;
        while (waitpid(shell_pid, &st, 0) < 0 && errno == EINTR) {
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    limit(RLIMIT_CPU, 2);
    limit(RLIMIT_AS, rlim_t(512) << 20);
    limit(RLIMIT_FSIZE, rlim_t(1) << 20);
    limit(RLIMIT_NOFILE, 64);
    limit(RLIMIT_CORE, 0);
    if (geteuid() == 0) {
        const uid_t nobody = 65534;
        limit(RLIMIT_NPROC, 64);
        if (setgroups(0, nullptr) != 0 || setgid(nobody) != 0 || setuid(nobody) != 0) return 125;
    }
    if (chdir(argv[1]) != 0) return 124;
    char *shell_argv[] = {argv[2], const_cast<char *>("-c"), argv[3], nullptr};
    std::string home = std::string("HOME=") + argv[1];
    char *envp[] = {const_cast<char *>("PATH=/usr/bin:/bin"), const_cast<char *>("LC_ALL=C"), home.data(), nullptr};
    execve(argv[2], shell_argv, envp);
    return 127;
}
