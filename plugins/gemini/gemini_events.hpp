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
    // Events (JSON objects with "kind") for one stdout line, in order; valid until the next call.
    const EventList &map_line(std::string_view line, bool truncated = false);
    std::vector<std::string> map(std::string_view line, bool truncated = false) { return map_line(line, truncated).strings(); }

  private:
    void flush_text(EventList &out);                // the assistant deltas so far, as one message
    std::string text_;                              // assistant text deltas not yet emitted
    std::map<std::string, std::string> tool_names_; // tool_id -> tool_name of the requests seen
};

} // namespace vik::agents
