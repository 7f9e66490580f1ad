// Fuzz target: `claude -p --output-format stream-json` stdout through ClaudeEventMapper, line by
// line (checks in mapper_oracle.hpp).
#include "claude-code/claude_events.hpp"
#include "mapper_oracle.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return vik::fuzz::replay_and_check<vik::agents::ClaudeEventMapper>(data, size);
}
