#pragma once
// Running the real vik-host as another user (tests run as root; agents of a host run as the
// host's user, so "same user, no privileges" is a host started as `nobody`).

#include "support/test_support.hpp"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

// Catch2 v2 has no SKIP: say why in the output and leave the test case.
#define VIK_SKIP(why)                                                                                                            \
    do {                                                                                                                         \
        WARN("skipped: " << (why));                                                                                              \
        return;                                                                                                                  \
    } while (0)

namespace vik::test {

struct Unprivileged {
    uid_t uid = 65534;
    gid_t gid = 65534;
    std::string name = "nobody";
    // Empty when the tests can switch to `nobody`, else why not.
    static std::string unavailable() {
        if (::geteuid() != 0) return "the tests do not run as root, so they cannot act as another user";
        if (::getpwuid(65534) == nullptr) return "no user with uid 65534 (nobody) exists";
        return "";
    }
};

// chown -R, so `nobody` may use a project directory.
inline void give_to(const std::filesystem::path &root, uid_t uid, gid_t gid) {
    if (::lchown(root.c_str(), uid, gid) != 0) return;
    for (auto &e : std::filesystem::recursive_directory_iterator(root))
        if (::lchown(e.path().c_str(), uid, gid) != 0) return;
}

// Drops to uid/gid (no supplementary groups, no capabilities left: the uid leaves 0).
inline bool become(uid_t uid, gid_t gid) { return ::setgroups(0, nullptr) == 0 && ::setgid(gid) == 0 && ::setuid(uid) == 0; }

// Runs vik-host as uid/gid in cwd with extra env; kills the group after timeout_sec.
inline CommandResult run_host_as(uid_t uid, gid_t gid, const std::vector<std::string> &args, const std::filesystem::path &cwd,
                                 const std::vector<std::string> &env, int timeout_sec = 60) {
    TempDir io;
    give_to(io.path, uid, gid);
    auto out = io / "stdout", err = io / "stderr";
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::setpgid(0, 0);
        if (!become(uid, gid)) ::_exit(125);
        if (::chdir(cwd.c_str()) != 0) ::_exit(126);
        for (const auto &kv : env)
            ::putenv(const_cast<char *>(kv.c_str()));
        ::setenv("HOME", cwd.c_str(), 1);
        if (!std::freopen(out.c_str(), "w", stdout) || !std::freopen(err.c_str(), "w", stderr) ||
            !std::freopen("/dev/null", "r", stdin))
            ::_exit(124);
        std::vector<std::string> copy = args;
        std::string bin = VIK_TEST_HOST_BINARY;
        std::vector<char *> argv{bin.data()};
        for (auto &a : copy)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(bin.c_str(), argv.data());
        ::_exit(127);
    }
    CommandResult r;
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_sec);
    while (::waitpid(pid, &status, WNOHANG) != pid) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(-pid, SIGKILL);
            ::waitpid(pid, &status, 0);
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

} // namespace vik::test
