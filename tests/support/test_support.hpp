#pragma once
// Helpers shared by tests: temporary directories, running the real vik-host binary, files.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vik::test {

struct TempDir {
    std::filesystem::path path;
    TempDir();
    ~TempDir();
    std::filesystem::path operator/(const std::string &p) const { return path / p; }
};

struct CommandResult {
    int exit_code = -1;
    std::string out, err;
};

// Runs the vik-host binary with args in cwd (empty: current) with extra env (KEY=VALUE) and a
// time limit; the whole process group is killed when the limit passes.
CommandResult run_host(const std::vector<std::string> &args, const std::filesystem::path &cwd = {},
                       const std::vector<std::string> &env = {}, int timeout_sec = 60);

// vik-host started in the background (own process group), for signal tests.
struct HostProcess {
    int pid = -1;
    std::filesystem::path out, err;
    TempDir io;
    // Waits up to timeout for exit; returns the exit code (128+signal when killed), -1 on timeout.
    int wait(std::chrono::milliseconds timeout);
    void signal(int sig) const;
    std::string stdout_text() const;
    ~HostProcess(); // kills the host if it still runs
};
// `env`: extra KEY=VALUE entries, as for run_host.
std::unique_ptr<HostProcess> start_host(const std::vector<std::string> &args, const std::filesystem::path &cwd = {},
                                        const std::vector<std::string> &env = {});

void write_file(const std::filesystem::path &path, const std::string &text);
std::string read_file(const std::filesystem::path &path);
std::string shell_quote(const std::string &s);

// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
bool wait_until(const std::function<bool()> &cond, std::chrono::milliseconds timeout);

// Whether any process whose command line contains `marker` is alive.
bool process_with_marker_alive(const std::string &marker);

std::filesystem::path plugin_dir();
std::filesystem::path test_plugin_root();
std::filesystem::path source_dir();

} // namespace vik::test
