// Fuzz target: template source -> Template (parse) -> render against a fixed, realistic hook
// context -> to_text, to_shell and expand_prompt_commands. Malformed templates and undefined names
// must fail with TemplateError (naming the template); a crash, a sanitizer report (integer
// overflow is one) or another exception is a bug. Also checked: to_text is the segments joined,
// rendering is deterministic, and substituted values never decide which `exec(...)` runs.
#include "template/template.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace json = boost::json;
using namespace vik::tmpl;

namespace {

const json::object &context() {
    static const json::object ctx = [] {
        json::object issue{{"id", "ENG-42"},
                           {"title", "Fix login: \"quotes\" & $(cmd)"},
                           {"description", "Steps:\n1. open\n2. `run`"},
                           {"state", "todo"},
                           {"stage", "build"},
                           {"workdir", "/srv/ws/ENG-42"},
                           {"priority", 2},
                           {"labels", json::array{"bug", "vik:build"}},
                           {"blocked_by", json::array{}},
                           {"meta", json::object{{"k", 1}, {"nested", json::object{{"x", json::array{1, 2.5, nullptr, true}}}}}}};
        return json::object{{"issue", issue},
                            {"workflow_dir", "/srv/my-proj"},
                            {"workflow_path", "/srv/my-proj/workflow.yml"},
                            {"workspace_root", "/root/.vik"},
                            {"attempt", 1},
                            {"big", INT64_MAX},
                            {"env", json::object{{"HOME", "/root"}, {"PATH", "/usr/bin:/bin"}}}};
    }();
    return ctx;
}

size_t count(std::string_view s, std::string_view what) {
    size_t n = 0;
    for (size_t p = s.find(what); p != std::string_view::npos; p = s.find(what, p + 1))
        ++n;
    return n;
}

[[noreturn]] void fail(const char *what, const std::string &src) {
    std::fprintf(stderr, "%s\ntemplate: %s\n", what, src.c_str());
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string src(reinterpret_cast<const char *>(data), size);
    // Templates come from the workflow's author, and the engine (like MiniJinja) has no output
    // cap: nested loops, a `set` that doubles a list inside a loop or chained `replace` grow
    // output exponentially by design. Those inputs are skipped so time and memory limits report
    // only real hangs.
    size_t fors = count(src, "for"), sets = count(src, "set"), replaces = count(src, "replace");
    if (fors > 2 || sets > 3 || (fors && sets) || replaces > 3) return 0;

    Segments segments;
    try {
        Template t(src, "fuzz.tmpl");
        segments = t.render(context());
        Segments again = t.render(context());
        if (to_text(again) != to_text(segments)) fail("rendering twice gave different text", src);
    } catch (const TemplateError &e) {
        if (std::string_view(e.what()).find("fuzz.tmpl") == std::string_view::npos)
            fail("a TemplateError that does not name the template", src);
        return 0;
    }
    std::string joined;
    for (const auto &s : segments)
        joined += s.text;
    if (to_text(segments) != joined) fail("to_text is not the segments joined", src);
    try {
        (void)to_shell(segments);
    } catch (const ShellContextError &) {
        // Refusing a context it cannot escape with certainty is allowed.
    }
    // Only `exec(...)` markers made of template source run. So the commands run must not depend on
    // what the values contain: the same count with every non-empty value replaced by "x" (an
    // empty value stays empty, it may join two pieces of source text).
    // A refusal may depend on a value (a NUL byte, a non-integer in arithmetic): that is the safe
    // direction, so only runs that were not refused are compared (-1: refused).
    auto count_runs = [](const Segments &segs) {
        int runs = 0;
        try {
            expand_prompt_commands(segs, [&](const std::string &) {
                ++runs;
                return std::string("OUT\n");
            });
        } catch (const ShellContextError &) {
            return -1;
        }
        return runs;
    };
    Segments neutral = segments;
    for (auto &s : neutral)
        if (!s.literal && !s.text.empty()) s.text = "x";
    int real = count_runs(segments), plain = count_runs(neutral);
    if (real >= 0 && plain >= 0 && real != plain) fail("text from a substituted value decided which exec(...) ran", src);
    return 0;
}
