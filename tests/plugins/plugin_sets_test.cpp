// Plugin sets that add up: --plugins adds to the built-ins, a name two plugins serve is an error
// naming both, and hook scripts without a hooks plugin are an error instead of silently skipped.
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

using namespace vik::test;

namespace {

std::string workflow(const std::string &tracker, const std::string &hooks = "") {
    return "agents:\n  bot: {runtime: scripted, model: none}\nissues:\n  tracker: {kind: " + tracker + "}\nissue:\n" + hooks +
           "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: hi}\n";
}

} // namespace

TEST_CASE("plugin sets: a team's tracker beside the built-ins keeps the hooks plugin, and doctor passes", "[plugins][doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", workflow("c-fixed", "  hooks:\n    after_create: echo hi > created.txt\n"));
    auto r = run_host({"--plugins", (test_plugin_root() / "good").string(), "doctor", (dir / "workflow.yml").string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("Vik doctor shows 0 error(s)"));
}

TEST_CASE("plugin sets: hook scripts with no hooks plugin loaded are an error, not silently skipped", "[plugins][doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", workflow("c-fixed", "  hooks:\n    after_create: echo hi > created.txt\n"));
    auto r = run_host(
        {"--no-builtin-plugins", "--plugins", (test_plugin_root() / "good").string(), "doctor", (dir / "workflow.yml").string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("the workflow has hook scripts but no hooks plugin is loaded"));
}

TEST_CASE("plugin sets: a tracker name two plugins serve is an error naming both", "[plugins][doctor]") {
    TempDir dir;
    write_file(dir / "workflow.yml", workflow("c-fixed"));
    auto r = run_host({"--plugins", (test_plugin_root() / "good").string(), "--plugins", (test_plugin_root() / "twin").string(),
                       "doctor", (dir / "workflow.yml").string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("the tracker 'c-fixed' set for 'issues.tracker.kind' is served by 2 plugins: good-c ("));
    CHECK_THAT(r.out, Catch::Contains("good-c-twin ("));
    CHECK_THAT(r.out, Catch::Contains("remove all but one from the plugin directories"));
}

TEST_CASE("plugin sets: resume on a runtime whose plugin cannot continue conversations is a doctor warning",
          "[plugins][doctor][conversation]") {
    TempDir dir;
    // The scripted runtime as a plugin that does not declare resumes_conversations.
    std::filesystem::create_directories(dir / "plugins");
    std::string manifest = read_file(plugin_dir() / "vik-scripted-agent.toml");
    manifest.replace(manifest.find("resumes_conversations = true\n"), 29, "");
    manifest.replace(manifest.find("library = \"libvik-scripted-agent.so\""), 36,
                     "library = \"" + (plugin_dir() / "libvik-scripted-agent.so").string() + "\"");
    write_file(dir / "plugins" / "vik-scripted-agent.toml", manifest);
    write_file(dir / "workflow.yml", "agents:\n  bot: {runtime: scripted, model: none, resume: true}\nissues:\n  tracker: "
                                     "{kind: c-fixed}\nissue:\n  stages:\n    work: {when: {state: todo}, agent: bot, "
                                     "prompt: hi}\n");
    auto r = run_host({"--no-builtin-plugins", "--plugins", (test_plugin_root() / "good").string(), "--plugins",
                       (dir / "plugins").string(), "doctor", (dir / "workflow.yml").string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0); // a warning: the runs work, each with a fresh conversation
    CHECK_THAT(r.out, Catch::Contains("the runtime 'scripted' (scripted-agent) cannot continue conversations"));
    auto builtin = run_host({"--plugins", (test_plugin_root() / "good").string(), "doctor", (dir / "workflow.yml").string()});
    CHECK_THAT(builtin.out, !Catch::Contains("cannot continue conversations"));
}
