#pragma once
// opencode `run --format json` stdout lines -> vik-host session events.

#include "../common/agent_cli.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace vik::agents {

class OpencodeEventMapper : public MapperState {
  public:
    std::vector<std::string> map(std::string_view line, bool truncated = false);

  private:
    bool started_ = false; // session_started emitted (opencode has no start line: every line carries sessionID)
};

} // namespace vik::agents
