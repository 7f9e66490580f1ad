// Fuzz target: vik::sdk::FlatJson (the SDK's reader of flat JSON lines) against boost::json, one
// reader reused over the lines of an input as a session reuses it (checks in flat_json_oracle.hpp).
#include "flat_json_oracle.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static vik::sdk::FlatJson flat;
    std::string_view text(reinterpret_cast<const char *>(data), size);
    // Lines are split at NUL bytes, not at line breaks, so that breaks between tokens (which a
    // FlatJson must report) are fuzzed too.
    for (;;) {
        size_t end = text.find('\0');
        std::string_view line = text.substr(0, end);
        // A heap copy of the line's exact size: a read past its end is an ASan report (a
        // std::string's spare capacity would not be).
        std::unique_ptr<char[]> exact(new char[line.size()]);
        std::memcpy(exact.get(), line.data(), line.size());
        std::string_view view(exact.get(), line.size());
        if (std::string problem = vik::fuzz::flat_json_disagreement(flat, view); !problem.empty()) {
            std::fprintf(stderr, "flat_json: %s\nline: %.*s\n", problem.c_str(), static_cast<int>(view.size()), view.data());
            std::abort();
        }
        if (end == std::string_view::npos) break;
        text.remove_prefix(end + 1);
    }
    return 0;
}
