// vik/plugin.hpp: header-only C++ helpers for writing vik-host plugins.
//
// Compiled into each plugin; never part of the ABI. Nothing here crosses the boundary except
// through the C types of plugin.h. Use it to:
//  - turn exceptions into a status plus message (`guarded`), so no exception escapes a plugin;
//  - write strings into sinks and error buffers;
//  - run a child through the host's process service and wait for it (`run_process`);
//  - define the one exported entry (`VIK_PLUGIN`).
#ifndef VIK_PLUGIN_HPP
#define VIK_PLUGIN_HPP

#include <vik/plugin.h>

#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vik::sdk {

// An error that carries the status to return across the ABI.
class Error : public std::runtime_error {
  public:
    explicit Error(const std::string &message, vik_status status = VIK_ERROR) : std::runtime_error(message), status_(status) {}
    vik_status status() const noexcept { return status_; }

  private:
    vik_status status_;
};

inline void set_error(vik_errbuf *err, std::string_view message) noexcept {
    if (err == nullptr || err->data == nullptr || err->capacity == 0) return;
    size_t n = message.size() < err->capacity - 1 ? message.size() : err->capacity - 1;
    std::memcpy(err->data, message.data(), n);
    err->data[n] = '\0';
}

inline void write(const vik_sink *sink, std::string_view data) noexcept {
    if (sink != nullptr && sink->write != nullptr) sink->write(sink->ctx, data.data(), data.size());
}

// Runs `body` and maps every way out of it to a status: normal return -> its status,
// vik::sdk::Error -> its status and message, any other exception -> VIK_ERROR.
template <class F> vik_status guarded(vik_errbuf *err, F &&body) noexcept {
    try {
        return body();
    } catch (const Error &e) {
        set_error(err, e.what());
        return e.status();
    } catch (const std::exception &e) {
        set_error(err, e.what());
        return VIK_ERROR;
    } catch (...) {
        set_error(err, "unknown exception in plugin");
        return VIK_ERROR;
    }
}

inline vik_status unsupported(vik_errbuf *err, std::string_view plugin, std::string_view operation) {
    set_error(err, std::string(plugin) + ": '" + std::string(operation) + "' is not supported by this plugin");
    return VIK_UNSUPPORTED;
}

// A string sink that appends into a std::string (for host-api calls that take a sink).
struct StringSink {
    std::string text;
    vik_sink sink() {
        return vik_sink{this,
                        [](void *ctx, const char *data, size_t len) { static_cast<StringSink *>(ctx)->text.append(data, len); }};
    }
};

inline void log(const vik_host_api *host, int32_t level, const std::string &message) noexcept {
    if (host != nullptr && host->log != nullptr) host->log(host->host_ctx, level, message.c_str());
}

// What a finished child produced: exit status and the tails of its output.
struct ProcessResult {
    int32_t exit_code = -1;
    int32_t term_signal = 0;
    bool timed_out = false;
    std::string out; // stdout, whole lines, kept up to `keep_bytes` (the tail)
    std::string err; // stderr, likewise
};

namespace detail {
struct ProcessCollector {
    size_t keep_bytes;
    std::string out, err;
    static void append(std::string &buf, size_t keep, const char *line, size_t len) {
        buf.append(line, len);
        buf.push_back('\n');
        if (buf.size() > keep) buf.erase(0, buf.size() - keep);
    }
};
} // namespace detail

// How to run one child with run_process.
struct RunOptions {
    std::vector<std::string> argv;
    const std::vector<std::string> *env = nullptr; // nullptr inherits the host's environment
    std::string cwd;
    std::optional<std::string> input; // written to stdin, then stdin is closed
    uint32_t timeout_ms = 30000;
    size_t keep_bytes = 64 * 1024; // how much of each stream's tail to keep
    uint32_t max_line_bytes = 0;   // 0: host default
};

// Runs a child through the host's process service, waits at most timeout_ms (then kills the
// whole process group and reports timed_out), and returns the tails of stdout/stderr.
// Call only from a thread that may block.
inline ProcessResult run_process(const vik_host_api *host, const RunOptions &o) {
    std::vector<const char *> cargv;
    for (const auto &a : o.argv)
        cargv.push_back(a.c_str());
    cargv.push_back(nullptr);
    std::vector<const char *> cenv;
    if (o.env != nullptr) {
        for (const auto &e : *o.env)
            cenv.push_back(e.c_str());
        cenv.push_back(nullptr);
    }
    vik_process_spec spec{};
    spec.struct_size = sizeof spec;
    spec.argv = cargv.data();
    spec.env = o.env != nullptr ? cenv.data() : nullptr;
    spec.cwd = o.cwd.empty() ? nullptr : o.cwd.c_str();
    spec.max_line_bytes = o.max_line_bytes;
    spec.pipe_stdin = o.input.has_value();

    detail::ProcessCollector collector{o.keep_bytes, {}, {}};
    vik_process_callbacks cb{};
    cb.struct_size = sizeof cb;
    cb.ctx = &collector;
    cb.on_stdout_line = [](void *ctx, const char *line, size_t len, bool) {
        auto *c = static_cast<detail::ProcessCollector *>(ctx);
        detail::ProcessCollector::append(c->out, c->keep_bytes, line, len);
    };
    cb.on_stderr_line = [](void *ctx, const char *line, size_t len, bool) {
        auto *c = static_cast<detail::ProcessCollector *>(ctx);
        detail::ProcessCollector::append(c->err, c->keep_bytes, line, len);
    };
    cb.on_exit = [](void *, int32_t, int32_t) {};

    char msg[512] = {0};
    vik_errbuf err{msg, sizeof msg};
    vik_process *proc = nullptr;
    if (host->process_spawn(host->host_ctx, &spec, &cb, &proc, &err) != VIK_OK)
        throw Error(std::string(msg[0] ? msg : "cannot start process"));
    if (o.input) {
        host->process_write_stdin(proc, o.input->data(), o.input->size());
        host->process_close_stdin(proc);
    }
    ProcessResult result;
    if (host->process_wait(proc, o.timeout_ms, &result.exit_code, &result.term_signal) == VIK_TIMEOUT) {
        result.timed_out = true;
        host->process_kill(proc, 9);
        // The group is dead; this wait only collects the exit, bounded all the same.
        host->process_wait(proc, 5000, &result.exit_code, &result.term_signal);
    }
    host->process_release(proc); // after release no callback runs, so the collector is ours again
    result.out = std::move(collector.out);
    result.err = std::move(collector.err);
    return result;
}

// The last `max` bytes of text, without a trailing newline.
inline std::string tail(std::string text, size_t max) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    if (text.size() > max) text.erase(0, text.size() - max);
    return text;
}

} // namespace vik::sdk

// Defines the one exported symbol. GET_INTERFACE: `const void *(*)(const char *)`.
#define VIK_PLUGIN(ID, VERSION, DESCRIPTION, GET_INTERFACE)                                                                      \
    VIK_PLUGIN_WITH_INIT(ID, VERSION, DESCRIPTION, GET_INTERFACE, nullptr, nullptr)

// The same with library-wide set-up and tear-down (vik_entry.init / deinit, ABI 1.2): INIT is
// `vik_status (*)(const vik_host_api *, vik_errbuf *)`, DEINIT `void (*)()`; either may be nullptr.
#define VIK_PLUGIN_WITH_INIT(ID, VERSION, DESCRIPTION, GET_INTERFACE, INIT, DEINIT)                                              \
    extern "C" VIK_PLUGIN_EXPORT const vik_entry vik_plugin_entry;                                                               \
    extern "C" VIK_PLUGIN_EXPORT const vik_entry vik_plugin_entry = {                                                            \
        VIK_ABI_MAJOR, VIK_ABI_MINOR, sizeof(vik_entry), ID, VERSION, DESCRIPTION, GET_INTERFACE, INIT, DEINIT}

#endif // VIK_PLUGIN_HPP
