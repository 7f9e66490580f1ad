// Fuzz target: vik::sdk::FlatJson (the SDK's reader of flat JSON lines) against boost::json, one
// reader reused over the lines of an input as a session reuses it (checks in flat_json_oracle.hpp).
#include "flat_json_oracle.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static vik::sdk::FlatJson flat;
    std::string_view text(reinterpret_cast<const char *>(data), size);
    for (;;) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        // A copy of the line's exact size: a read past its end is an ASan report.
        std::string exact(line);
        if (std::string problem = vik::fuzz::flat_json_disagreement(flat, exact); !problem.empty()) {
            std::fprintf(stderr, "flat_json: %s\nline: %s\n", problem.c_str(), exact.c_str());
            std::abort();
        }
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return 0;
}
