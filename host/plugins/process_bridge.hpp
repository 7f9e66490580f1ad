#pragma once
// Out-of-process plugins (docs/plugin-sdk.md, "Out-of-process plugins").
//
// A tracker or hooks plugin may run in a child process: a program in any language (manifest key
// `executable`), or a C ABI library the host keeps out of its own address space (`isolation =
// "process"`, served by `vik-host plugin serve MANIFEST`). The host talks to it over the child's
// stdin and stdout, one JSON-RPC 2.0 message per line:
//
//   host -> plugin  {"jsonrpc":"2.0","id":N,"method":M,"params":{...,"timeout_ms":T}}
//   plugin -> host  {"jsonrpc":"2.0","id":N,"result":R}
//                   {"jsonrpc":"2.0","id":N,"error":{"code":C,"message":TEXT,"data":{"status":S}}}
//                   {"jsonrpc":"2.0","method":"log","params":{"level":"debug|info|warn|error","message":TEXT}}
//   host -> plugin  {"jsonrpc":"2.0","method":"shutdown"} (a notification; then stdin closes)
//
// Methods: `initialize` {kind, plugin_id, abi_major, abi_minor, settings} (first, once per
// process), `tracker.pull` {} -> array of issues, `tracker.fetch` {ids} -> array,
// `tracker.set_state` {id, state}, `tracker.comment` {id, body}, `hooks.on_event` {event,
// context}. S is a status name (unsupported, invalid_argument, not_found, timeout, error); a
// JSON-RPC "method not found" (-32601) is `unsupported`.
//
// The bridge presents such a plugin to the rest of the host through the same C tables an
// in-process plugin exports (process_bridge_entry), so instances, the registry, doctor and the
// orchestrator never tell the two apart. Each instance owns one child, started through the host
// API (its own process group, killed with the host, spared by the host's kill_all so that it gets
// its `shutdown`), and supervised: every call has its deadline (the plugin's timeout_ms and a
// grace; a child that misses it is killed and started again), a child that exits is started
// again on the next call after a backoff (1, 2, 4, 8 s), and after kMaxConsecutiveFailures in a
// row without an answered call in between, calls fail with a message saying so until the host
// restarts.
// Its stderr lines and `log` messages become host log lines tagged with the plugin.

#include <vik/plugin.h>

namespace vik::plugins {

inline constexpr int kMaxConsecutiveFailures = 5;
inline constexpr uint32_t kPluginStartTimeoutMs = 10'000; // spawn and `initialize`
inline constexpr uint32_t kMaxMessageBytes = 64u << 20;   // one message (a big pull) at most

// The entry the registry gives a plugin whose code runs in a child process.
const vik_entry *process_bridge_entry();

} // namespace vik::plugins
