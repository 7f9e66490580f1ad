#pragma once
// Runs one command to completion through a process service, with a time limit after which
// its whole process group is killed. For host-side needs (prompt `exec(...)` commands).

#include "process/process_service.hpp"

#include <functional>

namespace vik::process {

struct CommandOutput {
    ExitStatus status;
    bool timed_out = false;
    std::string out;      // stdout, up to max_output bytes
    std::string err_tail; // last 2 KiB of stderr
};

CommandOutput run_command(ProcessService &service, const SpawnSpec &spec, uint32_t timeout_ms,
                          size_t max_output = 16 * 1024 * 1024);

// Something that runs a command to completion: run_command on a given service, or a test's own.
// Called on worker threads.
using CommandRunner = std::function<CommandOutput(const SpawnSpec &spec, uint32_t timeout_ms)>;

// run_command on `service`, which must outlive the runner.
CommandRunner command_runner(ProcessService &service);

} // namespace vik::process
