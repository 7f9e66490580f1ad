#pragma once
// opencode `run --format json` stdout lines -> vik-host session events.

#include "../common/agent_cli.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace vik::agents {

class OpencodeEventMapper : public MapperState {
  public:
    // Events (JSON objects with "kind") for one stdout line, in order; valid until the next call.
    const EventList &map_line(std::string_view line, bool truncated = false);
    std::vector<std::string> map(std::string_view line, bool truncated = false) { return map_line(line, truncated).strings(); }

  private:
    bool started_ = false; // session_started emitted (opencode has no start line: every line carries sessionID)
};

} // namespace vik::agents
