#include "process/run_command.hpp"

#include <csignal>
#include <mutex>

namespace vik::process {

CommandOutput run_command(ProcessService &service, const SpawnSpec &spec, uint32_t timeout_ms, size_t max_output) {
    struct Shared {
        std::mutex m;
        std::string out, err;
    };
    auto shared = std::make_shared<Shared>();
    ProcessCallbacks cb;
    cb.on_stdout = [shared, max_output](std::string_view line, bool) {
        std::lock_guard lock(shared->m);
        if (shared->out.size() < max_output) {
            shared->out.append(line.substr(0, max_output - shared->out.size()));
            shared->out.push_back('\n');
        }
    };
    cb.on_stderr = [shared](std::string_view line, bool) {
        std::lock_guard lock(shared->m);
        shared->err.append(line);
        shared->err.push_back('\n');
        if (shared->err.size() > 2048) shared->err.erase(0, shared->err.size() - 2048);
    };
    auto handle = service.spawn(spec, std::move(cb));
    CommandOutput result;
    auto st = handle->wait(timeout_ms);
    if (!st) {
        result.timed_out = true;
        handle->kill(SIGKILL);
        st = handle->wait(5000);
    }
    if (st) result.status = *st;
    handle->release();
    std::lock_guard lock(shared->m);
    result.out = shared->out;
    result.err_tail = shared->err;
    while (!result.err_tail.empty() && result.err_tail.back() == '\n')
        result.err_tail.pop_back();
    return result;
}

CommandRunner command_runner(ProcessService &service) {
    return [&service](const SpawnSpec &spec, uint32_t timeout_ms) { return run_command(service, spec, timeout_ms); };
}

} // namespace vik::process
