#pragma once
// codex `exec --json` stdout lines -> vik-host session events (vik-compat §6, with its FIXes).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vik::agents {

class CodexEventMapper {
public:
    // Events (JSON objects with "kind") for one stdout line, in order.
    std::vector<std::string> map(std::string_view line, bool truncated = false);
    int32_t terminal = -1;     // VIK_SESSION_COMPLETED / _FAILED once a terminal line was seen
    std::string terminal_detail;
    std::string last_notice;   // the latest top-level `error` message (a notice unless the turn fails)
};

} // namespace vik::agents
