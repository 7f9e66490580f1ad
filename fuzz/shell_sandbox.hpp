#pragma once
// Runs fuzzer-made shell text with dash or bash, fenced in: a scratch directory, no network, its
// own PID namespace (everything it started dies with it), CPU/memory/file/process limits, the
// `nobody` user when run as root (fuzz_shell_jail does those), and a wall-clock deadline after
// which the whole process group is killed. Used by the shell_inject and shell_roundtrip targets.
#include <filesystem>
#include <string>

namespace vik::fuzz {

struct ShellResult {
    std::string out; // stdout, at most 1 MiB
    int status = -1; // exit status; 128+N for signal N; -1 when the deadline killed it
    bool timed_out = false;
};

class ShellSandbox {
  public:
    ShellSandbox();  // makes the scratch directory
    ~ShellSandbox(); // removes it
    ShellSandbox(const ShellSandbox &) = delete;
    ShellSandbox &operator=(const ShellSandbox &) = delete;

    // Empties the scratch directory, then runs `shell -c script` in it. `shell` is an absolute path.
    ShellResult run(const char *shell, const std::string &script);
    const std::filesystem::path &dir() const { return dir_; }
    // Removes the scratch directory now: before abort(), which skips destructors.
    void remove();

  private:
    void empty_dir();
    std::filesystem::path dir_;
    std::string jail_; // fuzz_shell_jail, which fences the shell in (shell_jail.cpp)
    bool as_root_;
};

} // namespace vik::fuzz
