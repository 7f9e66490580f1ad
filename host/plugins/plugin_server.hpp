#pragma once
// The child side of the out-of-process protocol (process_bridge.hpp) for a C ABI library with
// `isolation = "process"`: `vik-host plugin serve MANIFEST` loads the library into this child the
// way the host would load it, and answers the host's requests on stdin/stdout with it, one at a
// time. A crash or a hang of the library costs this child, which the host starts again.
//
// The protocol owns stdout: the library's own writes to fd 1 go to stderr (the host logs them),
// and its log lines travel as `log` notifications.

#include <filesystem>

namespace vik::plugins {

// Serves until stdin closes or a `shutdown` arrives; returns the exit code (0, or 1 when the
// manifest cannot be read).
int serve_plugin(const std::filesystem::path &manifest);

} // namespace vik::plugins
