#pragma once
// The services table the host hands each plugin (vik_host_api), one per plugin instance so the
// log lines and settings it serves are that plugin's.

#include <vik/plugin.h>

#include <memory>
#include <string>

namespace vik::plugins {

struct HostContext {
    std::string plugin_id;
    std::string settings_json = "{}";
    vik_host_api api{};
};

// The returned context must outlive every use of `context->api` by the plugin.
std::unique_ptr<HostContext> make_host_context(std::string plugin_id, std::string settings_json = "{}");

} // namespace vik::plugins
