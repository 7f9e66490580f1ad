#pragma once
// codex `exec --json` stdout lines -> vik-host session events (vik-compat §6, with its FIXes).

#include "../common/agent_cli.hpp"

#include <vik/flat_json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vik::agents {

class CodexEventMapper : public MapperState {
  public:
    // Events (JSON objects with "kind") for one stdout line, in order; valid until the next call.
    const EventList &map_line(std::string_view line, bool truncated = false);
    std::vector<std::string> map(std::string_view line, bool truncated = false) { return map_line(line, truncated).strings(); }

  private:
    bool map_flat(EventList &out);
    vik::sdk::FlatJson flat_; // the line, read without a tree first
};

} // namespace vik::agents
