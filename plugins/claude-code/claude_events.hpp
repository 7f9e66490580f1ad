#pragma once
// claude `-p --output-format stream-json --verbose` stdout lines -> vik-host session events
// (vik-compat §6, with its FIXes).

#include "../common/agent_cli.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vik::agents {

class ClaudeEventMapper : public MapperState {
  public:
    // Events (JSON objects with "kind") for one stdout line, in order; valid until the next call.
    const EventList &map_line(std::string_view line, bool truncated = false);
    std::vector<std::string> map(std::string_view line, bool truncated = false) { return map_line(line, truncated).strings(); }

  private:
    std::set<std::string> subagent_calls_; // tool_use ids of Task/Agent calls
};

} // namespace vik::agents
