#include "plugins/plugin_call.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unistd.h>

namespace vik::plugins {

namespace {

using detail::CallRecord;

thread_local const CallRecord *current = nullptr;

// An alternate signal stack for this thread, so a plugin that overflows its stack is still
// reported. Left alone when the thread has one already (a sanitizer's), and not installed under
// AddressSanitizer, which keeps its own and mistakes a foreign one during exception unwinding.
struct AltStack {
    std::unique_ptr<char[]> memory;
    bool tried = false;
    ~AltStack() {
        if (!memory) return;
        stack_t off{};
        off.ss_flags = SS_DISABLE;
        ::sigaltstack(&off, nullptr);
    }
};
thread_local AltStack alt_stack;
constexpr size_t kAltStackBytes = 64 * 1024;

std::array<char, 4096> cleanup_path{};
// What the report says follows a plugin's crash (set_fatal_signal_consequence).
std::array<char, 200> consequence{"the host stops. Report it to the plugin's authors; remove the plugin to keep running"};
std::atomic<bool> installed{false};
constexpr std::array<int, 5> kFatal = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
struct sigaction previous_actions[5];

void copy(char *dst, size_t cap, const char *src) {
    size_t n = 0;
    for (; src && src[n] && n + 1 < cap; ++n)
        dst[n] = src[n];
    dst[n] = '\0';
}

// Appends `s` to the buffer without any allocation.
struct Line {
    char buf[512];
    size_t n = 0;
    void add(const char *s) {
        for (size_t i = 0; s[i] && n + 1 < sizeof buf; ++i)
            buf[n++] = s[i];
    }
};

const char *signal_name(int sig) {
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGABRT:
        return "SIGABRT";
    }
    return "a fatal signal";
}

void on_fatal(int sig, siginfo_t *info, void *uctx) {
    Line line;
    line.add("vik-host: fatal signal ");
    line.add(signal_name(sig));
    if (const CallRecord *r = current) {
        line.add(" in plugin '");
        line.add(r->plugin);
        line.add("' during ");
        line.add(r->call);
        if (r->subject[0]) {
            line.add(" (");
            line.add(r->subject);
            line.add(")");
        }
        line.add("; ");
        line.add(consequence.data());
    } else {
        line.add(" outside any plugin call; the host stops");
    }
    line.add("\n");
    ssize_t ignored = ::write(STDERR_FILENO, line.buf, line.n);
    (void)ignored;
    if (cleanup_path[0]) ::unlink(cleanup_path.data());
    // Hand the signal on: to the handler that was there before (a sanitizer's report), or the
    // default action.
    for (size_t i = 0; i < kFatal.size(); ++i) {
        if (kFatal[i] != sig) continue;
        const struct sigaction &prev = previous_actions[i];
        if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
            prev.sa_sigaction(sig, info, uctx);
            return;
        }
        if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
            prev.sa_handler(sig);
            return;
        }
    }
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

void ensure_alt_stack() {
#if defined(__SANITIZE_ADDRESS__)
    return;
#else
    if (alt_stack.tried) return;
    alt_stack.tried = true;
    stack_t current_stack{};
    if (::sigaltstack(nullptr, &current_stack) == 0 && !(current_stack.ss_flags & SS_DISABLE)) return;
    alt_stack.memory.reset(new char[kAltStackBytes]);
    stack_t ss{};
    ss.ss_sp = alt_stack.memory.get();
    ss.ss_size = kAltStackBytes;
    if (::sigaltstack(&ss, nullptr) != 0) alt_stack.memory.reset();
#endif
}

} // namespace

PluginCallScope::PluginCallScope(const std::string &plugin_id, const char *call, const std::string &subject)
    : previous_(current) {
    ensure_alt_stack();
    copy(record_.plugin, sizeof record_.plugin, plugin_id.c_str());
    copy(record_.call, sizeof record_.call, call);
    copy(record_.subject, sizeof record_.subject, subject.c_str());
    current = &record_;
}

PluginCallScope::~PluginCallScope() { current = previous_; }

namespace {

// Worker calls in flight, by a serial id (WorkerCallDeadline).
struct OpenCall {
    std::string plugin, call, subject;
    std::chrono::steady_clock::time_point started, deadline; // deadline: the timeout, plus kStallGrace
    uint32_t timeout_ms = 0;
    bool reported = false; // its plugin was reported unhealthy because of it
};

struct OpenCalls {
    std::mutex mutex;
    std::map<uint64_t, OpenCall> by_id;
    uint64_t next = 1;
};

OpenCalls &open_calls() {
    static OpenCalls calls;
    return calls;
}

std::string seconds_text(std::chrono::steady_clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

} // namespace

WorkerCallDeadline::WorkerCallDeadline(const std::string &plugin_id, const char *call, std::string subject, uint32_t timeout_ms) {
    auto &calls = open_calls();
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(calls.mutex);
    id_ = calls.next++;
    calls.by_id[id_] = OpenCall{
        plugin_id, call, std::move(subject), now, now + std::chrono::milliseconds(timeout_ms) + kStallGrace, timeout_ms, false};
}

WorkerCallDeadline::~WorkerCallDeadline() {
    auto &calls = open_calls();
    std::unique_lock lock(calls.mutex);
    auto it = calls.by_id.find(id_);
    if (it == calls.by_id.end()) return;
    OpenCall done = std::move(it->second);
    calls.by_id.erase(it);
    lock.unlock();
    if (done.reported)
        spdlog::warn("[plugin {}] its {} returned after {} (its timeout was {} ms); calls to it go on", done.plugin, done.call,
                     seconds_text(std::chrono::steady_clock::now() - done.started), done.timeout_ms);
}

std::string WorkerCallDeadline::refusal(const std::string &plugin_id) {
    auto &calls = open_calls();
    auto now = std::chrono::steady_clock::now();
    std::string why;
    bool first_report = false;
    {
        std::lock_guard lock(calls.mutex);
        for (auto &[id, c] : calls.by_id) {
            if (c.plugin != plugin_id || now < c.deadline) continue;
            why = "plugin '" + plugin_id + "' is unhealthy: its " + c.call + (c.subject.empty() ? "" : " (" + c.subject + ")") +
                  " has not returned " + seconds_text(now - c.started) + " after it started with a " +
                  std::to_string(c.timeout_ms) +
                  " ms timeout, and holds a worker. Calls to it are refused until it returns; a plugin that ignores its "
                  "timeouts can be stopped only out of the host (isolation = \"process\")";
            first_report = !c.reported;
            c.reported = true;
            break;
        }
    }
    if (first_report) spdlog::error("{}", why);
    return why;
}

std::string current_call_tag() {
    const CallRecord *r = current;
    if (r == nullptr) return {};
    std::string tag = std::string("call=") + r->call;
    if (r->subject[0] != '\0') tag += std::string(" subject=") + r->subject;
    return tag;
}

void install_fatal_signal_report() {
    if (installed.exchange(true)) return;
    ensure_alt_stack();
    for (size_t i = 0; i < kFatal.size(); ++i) {
        struct sigaction sa {};
        sa.sa_sigaction = on_fatal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        ::sigaction(kFatal[i], &sa, &previous_actions[i]);
    }
}

void remove_on_fatal_signal(const std::string &path) { copy(cleanup_path.data(), cleanup_path.size(), path.c_str()); }

void set_fatal_signal_consequence(const std::string &text) { copy(consequence.data(), consequence.size(), text.c_str()); }

} // namespace vik::plugins
