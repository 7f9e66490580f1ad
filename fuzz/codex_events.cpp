// Fuzz target: `codex exec --json` stdout through CodexEventMapper, line by line (checks in
// mapper_oracle.hpp).
#include "codex/codex_events.hpp"
#include "mapper_oracle.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return vik::fuzz::replay_and_check<vik::agents::CodexEventMapper>(data, size);
}
