#pragma once
// Runs one command to completion through the process service, with a time limit after which
// its whole process group is killed. For host-side needs (prompt `exec(...)` commands).

#include "process/process_service.hpp"

namespace vik::process {

struct CommandOutput {
    ExitStatus status;
    bool timed_out = false;
    std::string out;      // stdout, up to max_output bytes
    std::string err_tail; // last 2 KiB of stderr
};

CommandOutput run_command(const SpawnSpec &spec, uint32_t timeout_ms, size_t max_output = 16 * 1024 * 1024);

} // namespace vik::process
