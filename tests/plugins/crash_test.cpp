// A plugin that crashes the host is named before the host dies (plugins/plugin_call.hpp).
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace vik::test;
namespace fs = std::filesystem;

TEST_CASE("plugins: a tracker that crashes the host is named with its call before the host dies", "[plugins][crash][e2e]") {
    TempDir dir;
    write_file(dir / "agent.sh", "#!/bin/sh\ncat >/dev/null\necho '{\"kind\":\"completed\"}'\n");
    fs::permissions(dir / "agent.sh", fs::perms::owner_all);
    write_file(dir / "workflow.yml",
               "loop: {max_iterations: 1}\nagents:\n  bot: {runtime: scripted, model: none, settings: {command: " +
                   (dir / "agent.sh").string() +
                   "}}\nissues:\n  tracker: {kind: crashy}\nissue:\n  stages:\n"
                   "    work: {when: {state: todo}, agent: bot, prompt: hi}\n");
    auto r = run_host({"--plugins", plugin_dir().string(), "--plugins", (test_plugin_root() / "crashy").string(), "run",
                       (dir / "workflow.yml").string()},
                      dir.path, {}, 60);
    INFO(r.out << r.err);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err,
               Catch::Contains("vik-host: fatal signal SIGSEGV in plugin 'crashy-tracker' during tracker.pull; the host stops"));
    // No stale state.json naming the dead pid is left behind.
    std::string key = (dir / "workflow.yml").string();
    for (char &c : key)
        if (c == '/') c = '-';
    CHECK(fs::exists(dir / ".vik" / "workflows" / key / "service"));
    CHECK_FALSE(fs::exists(dir / ".vik" / "workflows" / key / "service" / "state.json"));
}
