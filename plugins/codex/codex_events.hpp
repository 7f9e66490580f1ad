#pragma once
// codex `exec --json` stdout lines -> vik-host session events (vik-compat §6, with its FIXes).

#include "../common/agent_cli.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vik::agents {

class CodexEventMapper : public MapperState {
  public:
    // Events (JSON objects with "kind") for one stdout line, in order.
    std::vector<std::string> map(std::string_view line, bool truncated = false);
};

} // namespace vik::agents
