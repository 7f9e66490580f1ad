// Compiled as strict C++17: the SDK's C++ helpers (plugin.hpp, process_session.hpp, event_text.hpp,
// flat_json.hpp) promise
// plugin authors C++17, not the host's C++23. Exits non-zero when a helper misbehaves.
#include <vik/event_text.hpp>
#include <vik/flat_json.hpp>
#include <vik/plugin.hpp>
#include <vik/process_session.hpp>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

static_assert(__cplusplus == 201703L, "this check must be built as C++17");

int main() {
    char buf[64] = {0};
    vik_errbuf err{buf, sizeof buf};
    vik_status st = vik::sdk::guarded(&err, []() -> vik_status { throw std::runtime_error("boom"); });
    if (st != VIK_ERROR || std::strcmp(buf, "boom") != 0) return 1;
    if (vik::sdk::tail("a\nbcdef\n", 3) != "def") return 2;
    vik::sdk::EventList events;
    vik::sdk::EventWriter(events, VIK_EVENT_MESSAGE).text("text", "say \"hi\"\n\x01").integer("n", -3).json("raw", "[1]").end();
    vik::sdk::EventWriter(events, VIK_EVENT_COMPLETED).end();
    if (events.size() != 2 || events[0] != R"({"kind":"message","text":"say \"hi\"\n\u0001","n":-3,"raw":[1]})" ||
        events[1] != R"({"kind":"completed"})")
        return 3;
    vik::sdk::FlatJson line;
    if (line.read(events[0])) return 4; // its \u0001 escape is one a FlatJson gives up on
    if (!line.read(R"({"kind":"message","text":"say \"hi\"","usage":{"n":-3}})") || line.text("text") == nullptr ||
        *line.text("text") != "say \"hi\"" || line.integer("usage.n") == nullptr || *line.integer("usage.n") != -3)
        return 5;
    std::puts("plugin.hpp, process_session.hpp, event_text.hpp and flat_json.hpp compile and run as C++17");
    return 0;
}
