#pragma once
// Crash attribution for in-process plugins. Every call into a plugin (instances.cpp) runs inside
// a PluginCallScope that records, for its thread, which plugin, which call and which issue or
// session. A fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) then writes one line naming
// them before the process dies, removes the state file (no stale state.json), and hands the
// signal on (to the sanitizer's handler if one is installed, else the default action).

#include <chrono>
#include <cstdint>
#include <string>

namespace vik::plugins {

namespace detail {
// Plain fixed-size data: read by the thread's own signal handler (async-signal-safe).
struct CallRecord {
    char plugin[96] = {};
    char call[48] = {};
    char subject[160] = {};
};
} // namespace detail

class PluginCallScope {
  public:
    // `plugin_id` and `call` must outlive the scope (manifest strings, literals); `subject` (an
    // issue id, a session id, or empty) is copied.
    PluginCallScope(const std::string &plugin_id, const char *call, const std::string &subject = {});
    ~PluginCallScope();
    PluginCallScope(const PluginCallScope &) = delete;
    PluginCallScope &operator=(const PluginCallScope &) = delete;

  private:
    detail::CallRecord record_;
    const detail::CallRecord *previous_;
};

// Stall attribution for worker calls (tracker and hooks calls, which are given a timeout). A call
// still running kStallGrace past its timeout makes its plugin unhealthy: further worker calls to
// that plugin are refused, with a message naming the overdue call (logged once), until it
// returns. So a plugin that ignores its timeouts holds only the workers it held when it hung, and
// the worker pool's spares (orchestrator/blocking_runner.hpp) keep the host going meanwhile.
inline constexpr std::chrono::milliseconds kStallGrace{1000};

class WorkerCallDeadline {
  public:
    // `call` must outlive the object (a literal).
    WorkerCallDeadline(const std::string &plugin_id, const char *call, std::string subject, uint32_t timeout_ms);
    ~WorkerCallDeadline();
    WorkerCallDeadline(const WorkerCallDeadline &) = delete;
    WorkerCallDeadline &operator=(const WorkerCallDeadline &) = delete;

    // Why a new worker call to `plugin_id` is refused now; empty when it may go on. Thread-safe.
    static std::string refusal(const std::string &plugin_id);

  private:
    uint64_t id_;
};

// The plugin call this thread is in, for log lines ("plugin=x call=pull subject=A-1"); empty
// outside a call.
std::string current_call_tag();

// Installs the fatal-signal report once per process (idempotent). Threads entering a plugin call
// get an alternate signal stack, so a plugin that overflows its stack is still reported.
void install_fatal_signal_report();

// What the report says follows a crash inside a plugin call (default: "the host stops. ...");
// an isolated plugin's child process says that only it stops. Call before plugins run.
void set_fatal_signal_consequence(const std::string &text);

// A file to remove on a fatal signal (the daemon's state.json); empty: none.
void remove_on_fatal_signal(const std::string &path);

} // namespace vik::plugins
