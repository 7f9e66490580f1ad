#pragma once
// The host's process service: the only place in vik-host that starts child processes.
//
// Every child runs in its own session (so its process group id is its pid), with stdout and
// stderr read line by line on one dedicated I/O thread, lines cut at a byte cap so memory stays
// bounded. A child and everything it starts form its *session*, contained as containment.hpp
// says (own cgroup, or the proc-walk fallback; the host is a subreaper either way), so even
// descendants that call setsid/setpgid are found. When a child's leader exits, the rest of its
// session is killed so nothing it started lingers; when the host exits (even by SIGKILL) the
// orphan guard kills what is left. A child may have a read gate (read_gate.hpp): while it is
// shut, the child's pipes are not read. The composition root (cli/cmd_run.cpp) builds the
// host's one service and hands it down: to the orchestrator, and to plugins through the C host
// api (plugins/host_api.hpp, ProcessServiceBinding).

#include "process/read_gate.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vik::process {

struct SpawnSpec {
    std::vector<std::string> argv;               // argv[0] looked up on PATH when it has no '/'
    std::optional<std::vector<std::string>> env; // KEY=VALUE; nullopt inherits the host's
    std::string cwd;                             // empty: the host's cwd
    size_t max_line_bytes = 1024 * 1024;
    bool pipe_stdin = false;
    // A long-lived helper its owner stops itself (an out-of-process plugin, asked to shut down
    // when its instance goes): kill_all passes it over. It still dies with the host (orphan
    // guard), at release, and when the service goes.
    bool spared_by_kill_all = false;
    // Flow control for stdout/stderr; null: the spawning thread's ScopedSpawnGate, if any.
    std::shared_ptr<ReadGate> gate;
};

struct ExitStatus {
    int32_t exit_code = -1;  // -1 when killed by a signal
    int32_t term_signal = 0; // > 0 when killed by a signal
};

// Callbacks run on the process I/O thread, lines first, then on_exit exactly once after both
// streams closed and the process was reaped.
struct ProcessCallbacks {
    std::function<void(std::string_view line, bool truncated)> on_stdout;
    std::function<void(std::string_view line, bool truncated)> on_stderr;
    std::function<void(ExitStatus)> on_exit;
};

class Child; // internal

// A handle to one child. Destroying or releasing it kills a still-running child's group and
// guarantees that no callback runs afterwards.
class ProcessHandle {
  public:
    explicit ProcessHandle(std::shared_ptr<Child> child) : child_(std::move(child)) {}
    ~ProcessHandle();
    ProcessHandle(const ProcessHandle &) = delete;
    ProcessHandle &operator=(const ProcessHandle &) = delete;

    int64_t pid() const;
    void write_stdin(std::string data);
    void close_stdin();
    void kill(int signal); // the child's whole session (see containment.hpp); no-op after exit
    // Waits until on_exit ran; nullopt on timeout. Must not be called on the I/O thread.
    std::optional<ExitStatus> wait(uint32_t timeout_ms);
    bool exited() const;
    void release(); // idempotent

  private:
    std::shared_ptr<Child> child_;
};

class ProcessService {
  public:
    ProcessService();
    ~ProcessService(); // kills every child still running and joins the I/O thread
    ProcessService(const ProcessService &) = delete;
    ProcessService &operator=(const ProcessService &) = delete;

    // Starts a child; throws std::runtime_error naming argv[0] and the reason when it cannot.
    std::unique_ptr<ProcessHandle> spawn(const SpawnSpec &spec, ProcessCallbacks callbacks);

    // Sends `signal` to every live child's session (but those spawned spared_by_kill_all) and to
    // orphans the host adopted (shutdown).
    void kill_all(int signal);
    size_t live_children() const;
    // The containment mechanism in force and why, for the start-up log.
    std::string containment_description() const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

// Raises the soft open-file limit to the hard one (each session holds a few descriptors: with
// the usual 1024 only a few hundred agents could run) and returns the new soft limit. Children
// get the limit the host was started with back. Call once at start, before threads exist.
uint64_t raise_open_file_limit();

// Searches PATH (from env if it has one, else the host's) for a program name without '/'.
std::optional<std::string> find_program(const std::string &name, const std::optional<std::vector<std::string>> &env);

} // namespace vik::process
