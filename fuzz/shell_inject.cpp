// Fuzz target: the shell escaper's injection oracle. The input is a shell template (text with
// `{{v}}` markers where a value is substituted) and, after the first NUL byte, a hostile value;
// with no NUL the value is one of kHostile. to_shell must either refuse (ShellContextError) or
// return text in which the value is data: run with dash and with bash (shell_sandbox.hpp), no
// command the value spells may run.
//
// The canary: the value's "CANARY" becomes `CAN""ARY<tag>`, <tag> random per process. Only the
// shell *parsing* the value's text as code removes those quotes and creates the file
// CANARY<tag>; using the value as data (an argument, "$x", even unquoted $x) never does, and the
// template cannot spell a name it never sees. So a file CANARY<tag> in the scratch directory means
// substituted text was executed: abort().
#include "shell_sandbox.hpp"
#include "shell_segments.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

using namespace vik;

namespace {

// clang-format off
const std::vector<std::string> kHostile = {
    ";touch CANARY",
    "$(touch CANARY)",
    "`touch CANARY`",
    "'; touch CANARY; '",
    "\"; touch CANARY; \"",
    "x\ntouch CANARY\n",
    "EOF\ntouch CANARY\nEOF",
    "EOF\n$(touch CANARY)\n",
    "\\'; touch CANARY #",
    "a b;touch CANARY #",
    "')\"; touch CANARY #",
    "}; touch CANARY; {",
    "$((0))$(touch CANARY)",
    "\\\ntouch CANARY",
    " && touch CANARY",
    "|touch CANARY",
    "\"$(touch CANARY)\"",
    "\\`touch CANARY\\`",
    "x)\ntouch CANARY\n(",
    "'\"`$(touch CANARY)`\"'",
};
// clang-format on

const std::string &tag() {
    static const std::string t = [] {
        std::random_device rd;
        char buf[16];
        std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
        return std::string(buf);
    }();
    return t;
}

std::string arm(std::string value) {
    const std::string from = "CANARY", to = "CAN\"\"ARY" + tag();
    for (size_t p = value.find(from); p != std::string::npos; p = value.find(from, p + to.size()))
        value.replace(p, from.size(), to);
    return value;
}

vik::fuzz::ShellSandbox &sandbox() {
    static vik::fuzz::ShellSandbox s;
    return s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view input(reinterpret_cast<const char *>(data), size);
    size_t nul = input.find('\0');
    std::string_view templ = input.substr(0, nul);
    std::string value = nul == std::string_view::npos ? kHostile[size % kHostile.size()] : std::string(input.substr(nul + 1));
    if (vik::fuzz::has_nul(value)) return 0; // a value no shell string can hold
    value = arm(value);

    std::string script;
    try {
        script = tmpl::to_shell(vik::fuzz::make_segments(templ, value));
    } catch (const tmpl::ShellContextError &) {
        return 0; // refusing a context it cannot escape with certainty is the safe answer
    }
    if (vik::fuzz::has_nul(script)) return 0;
    for (const char *shell : {"/bin/dash", "/bin/bash"}) {
        sandbox().run(shell, script);
        if (std::filesystem::exists(sandbox().dir() / ("CANARY" + tag()))) {
            std::fprintf(stderr, "\nINJECTION: %s ran text from the substituted value\ntemplate: %.*s\nvalue: %s\nto_shell: %s\n",
                         shell, static_cast<int>(templ.size()), templ.data(), value.c_str(), script.c_str());
            sandbox().remove();
            std::abort();
        }
    }
    return 0;
}
