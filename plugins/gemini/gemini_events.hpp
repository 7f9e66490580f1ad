#pragma once
// gemini `--output-format stream-json` stdout lines -> vik-host session events.

#include "../common/agent_cli.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vik::agents {

class GeminiEventMapper : public MapperState {
  public:
    std::vector<std::string> map(std::string_view line, bool truncated = false);

  private:
    void flush_text(std::vector<std::string> &out); // the assistant deltas so far, as one message
    std::string text_;                              // assistant text deltas not yet emitted
    std::map<std::string, std::string> tool_names_; // tool_id -> tool_name of the requests seen
};

} // namespace vik::agents
