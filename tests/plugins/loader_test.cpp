// The real loader against plugins the test tree builds: one good plugin in C, and one of each
// broken kind. Each broken one is refused with its reason while the others load.
#include "e2e/e2e_support.hpp"
#include "plugins/instances.hpp"
#include "plugins/manifest.hpp"
#include "plugins/registry.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

using namespace vik;
using vik::test::TempDir;
using vik::test::test_plugin_root;

namespace {
const plugins::PluginRecord *record_for(const plugins::Registry &reg, const std::string &file) {
    for (const auto &r : reg.records)
        if (r.path.filename() == file) return &r;
    return nullptr;
}
} // namespace

TEST_CASE("loader: each broken plugin is refused with its reason, the good one loads", "[plugins]") {
    auto reg = plugins::load_plugins({test_plugin_root() / "mixed"});
    CHECK_FALSE(reg.all_loaded());

    auto *good = record_for(reg, "libvik-good-c-mixed.so");
    REQUIRE(good);
    CHECK(good->loaded);
    CHECK(good->id == "good-c");
    CHECK(good->version == "1.2.3");
    CHECK(good->abi == "1.2");

    auto *wrong = record_for(reg, "libvik-wrong-abi.so");
    REQUIRE(wrong);
    CHECK_FALSE(wrong->loaded);
    CHECK_THAT(wrong->error, Catch::Contains("built for ABI 2.0, this host speaks ABI 1.2"));

    auto *noentry = record_for(reg, "libvik-no-entry.so");
    REQUIRE(noentry);
    CHECK_FALSE(noentry->loaded);
    CHECK_THAT(noentry->error, Catch::Contains("no entry symbol 'vik_plugin_entry'"));

    auto *text = record_for(reg, "libvik-text.so");
    REQUIRE(text);
    CHECK_FALSE(text->loaded);
    CHECK_THAT(text->error, Catch::Contains("not a loadable shared library"));

    auto *mismatch = record_for(reg, "libvik-mismatch.so");
    REQUIRE(mismatch);
    CHECK_FALSE(mismatch->loaded);
    CHECK_THAT(mismatch->error, Catch::Contains("says id 'mismatch' but the library says 'actual-id'"));

    auto *dup = record_for(reg, "libvik-zz-dup.so");
    REQUIRE(dup);
    CHECK_FALSE(dup->loaded);
    CHECK_THAT(dup->error, Catch::Contains("plugin id 'good-c' is already provided by"));

    // A table cut short is refused at load, not at its first call.
    auto *short_table = record_for(reg, "libvik-short-table.so");
    REQUIRE(short_table);
    CHECK_FALSE(short_table->loaded);
    CHECK_THAT(short_table->error,
               Catch::Contains("its vik.tracker/1 table is too short (struct_size 40, expected at least 56)"));

    // The minor-ABI rule: a plugin built for a newer minor loads, with a note saying what that means.
    auto *ahead = record_for(reg, "libvik-good-c-ahead.so");
    REQUIRE(ahead);
    CHECK(ahead->loaded);
    CHECK(ahead->abi == "1.3");
    CHECK_THAT(ahead->note, Catch::Contains("built for ABI 1.3, newer than this host's 1.2: loaded (minors only add)"));

    REQUIRE(reg.plugins.size() == 2);
    CHECK(reg.find_id("good-c") != nullptr);
    CHECK(reg.find_tracker("c-fixed") != nullptr);
    CHECK(reg.find_tracker("c-ahead") != nullptr);
}

TEST_CASE("loader: a plugin written in C serves its tracker through the host", "[plugins]") {
    auto reg = plugins::load_plugins({test_plugin_root() / "good"});
    REQUIRE(reg.all_loaded());
    auto tracker = plugins::TrackerInstance::create(reg.find_tracker("c-fixed"), "{}");
    REQUIRE(tracker);
    auto issues = (*tracker)->pull(1000);
    REQUIRE(issues);
    CHECK(*issues == R"([{"id":"C-1","title":"from a C plugin","state":"todo"}])");
    auto fetched = (*tracker)->fetch("[]", 1000);
    REQUIRE_FALSE(fetched);
    CHECK(fetched.error().status == VIK_UNSUPPORTED);
    CHECK(fetched.error().message == "good-c: fetch is not supported");
}

TEST_CASE("loader: the library stays loaded while an instance created from it lives", "[plugins]") {
    std::unique_ptr<plugins::TrackerInstance> tracker;
    {
        auto reg = plugins::load_plugins({test_plugin_root() / "good"});
        auto made = plugins::TrackerInstance::create(reg.find_tracker("c-fixed"), "{}");
        REQUIRE(made);
        tracker = std::move(*made);
    } // the registry is gone; the instance still holds the library
    auto issues = tracker->pull(1000);
    REQUIRE(issues);
    CHECK(issues->find("C-1") != std::string::npos);
}

TEST_CASE("loader: a missing plugin directory is reported, not fatal", "[plugins]") {
    auto reg = plugins::load_plugins({"/nonexistent/vik-plugins", test_plugin_root() / "good"});
    REQUIRE(reg.records.size() == 2);
    CHECK_THAT(reg.records[0].error, Catch::Contains("does not exist"));
    CHECK(reg.records[1].loaded);
}

TEST_CASE("loader: the shipped plugins declare their kinds, bad settings are refused with a reason", "[plugins]") {
    auto reg = plugins::load_plugins({vik::test::plugin_dir()});
    CHECK(reg.all_loaded());
    for (const char *id : {"codex", "claude-code", "scripted-agent"}) {
        auto p = reg.find_id(id);
        REQUIRE(p);
        CHECK(p->manifest.kinds == std::vector<plugins::Kind>{plugins::Kind::agent_runtime});
    }
    for (const char *id : {"github-tracker", "command-tracker", "file-tracker"}) {
        auto p = reg.find_id(id);
        REQUIRE(p);
        CHECK(p->manifest.kinds == std::vector<plugins::Kind>{plugins::Kind::tracker});
    }
    auto hooks = reg.find_id("shell-hooks");
    REQUIRE(hooks);
    CHECK(hooks->manifest.kinds == std::vector<plugins::Kind>{plugins::Kind::hooks});

    auto tracker = plugins::TrackerInstance::create(reg.find_id("github-tracker"), "{}");
    REQUIRE_FALSE(tracker);
    CHECK(tracker.error().status == VIK_INVALID_ARGUMENT);
    CHECK(tracker.error().message == "github-tracker: 'repos' (a list of owner/name) is required");
    auto command = plugins::TrackerInstance::create(reg.find_id("command-tracker"), "{}");
    REQUIRE_FALSE(command);
    CHECK_THAT(command.error().message, Catch::Contains("setting 'command' (the pull command) is required"));
}

TEST_CASE("manifest: the shipped plugins declare their facts, so the host names none of them", "[plugins]") {
    auto reg = plugins::load_plugins({vik::test::plugin_dir()});
    auto github = reg.find_tracker("github");
    REQUIRE(github);
    CHECK(github->manifest.secret_env == std::vector<std::string>{"GITHUB_TOKEN", "GH_TOKEN"});
    CHECK(github->manifest.settings_from == plugins::SettingsSource::tracker_section);
    auto command = reg.find_tracker("command");
    REQUIRE(command);
    CHECK(command->manifest.settings_from == plugins::SettingsSource::pull_command);
    CHECK(command->manifest.secret_env.empty());
    auto file = reg.find_tracker("file");
    REQUIRE(file);
    CHECK(file->manifest.settings_from == plugins::SettingsSource::tracker_section);
    CHECK(file->manifest.secret_env.empty());
    for (const char *runtime : {"codex", "claude_code", "gemini", "opencode", "scripted"}) {
        INFO(runtime);
        auto r = reg.find_runtime(runtime);
        REQUIRE(r);
        CHECK(r->manifest.resumes_conversations);
    }
    // shell-hooks runs the workflow's snippets only: points without one need no call.
    bool shell_hooks_found = false;
    for (const auto &h : reg.with_kind(plugins::Kind::hooks))
        if (h->manifest.id == "shell-hooks") {
            shell_hooks_found = true;
            CHECK(h->manifest.scripted_only);
        }
    CHECK(shell_hooks_found);
}

TEST_CASE("manifest: a plugin whose fact has the wrong TOML type is refused, the one beside it loads", "[plugins]") {
    auto reg = plugins::load_plugins({test_plugin_root() / "bad-facts"});
    auto *bad = record_for(reg, "vik-bad-facts.toml");
    REQUIRE(bad);
    CHECK_FALSE(bad->loaded);
    CHECK(bad->error == (test_plugin_root() / "bad-facts" / "vik-bad-facts.toml").string() +
                            ":7:14: invalid manifest: 'secret_env' must be an array of strings, found a string");
    REQUIRE(reg.plugins.size() == 1);
    CHECK(reg.plugins[0]->manifest.id == "good-c");
}

TEST_CASE("manifest: a key of the wrong type or in the wrong place is refused, naming file, line and key", "[plugins]") {
    TempDir dir;
    const std::string head = "id = \"x\"\nabi_major = 1\n";
    auto error_for = [&](const std::string &body) {
        auto path = dir / "x.toml";
        vik::test::write_file(path, head + body);
        auto m = plugins::read_manifest(path);
        return m ? std::string("(accepted)") : m.error();
    };
    const std::string at = (dir / "x.toml").string() + ":";
    const std::string tracker = "kinds = [\"tracker\"]\n";
    CHECK(error_for(tracker + "secret_env = \"TOKEN\"\n") ==
          at + "4:14: invalid manifest: 'secret_env' must be an array of strings, found a string");
    CHECK(error_for(tracker + "secret_env = [\"A\", 2]\n") ==
          at + "4:20: invalid manifest: 'secret_env' must be an array of strings, found an element that is an integer");
    CHECK_THAT(error_for(tracker + "secret_env = [\"MY TOKEN\"]\n"),
               Catch::Contains("'secret_env' names 'MY TOKEN', which is not an environment variable name"));
    CHECK_THAT(error_for("kinds = [\"agent-runtime\"]\nsecret_env = [\"OPENAI_API_KEY\"]\n"),
               Catch::Contains("'secret_env' is only for tracker and hooks plugins"));
    CHECK(error_for(tracker + "settings_from = true\n") ==
          at + "4:17: invalid manifest: 'settings_from' must be a string, found a boolean");
    CHECK_THAT(error_for(tracker + "settings_from = \"pull\"\n"),
               Catch::Contains("'settings_from' is 'pull' (expected \"tracker\""));
    CHECK_THAT(error_for("kinds = [\"hooks\"]\nsettings_from = \"pull_command\"\n"),
               Catch::Contains("'settings_from' is only for tracker plugins"));
    CHECK_THAT(error_for(tracker + "resumes_conversations = true\n"),
               Catch::Contains("'resumes_conversations' is only for agent-runtime plugins"));
    CHECK_THAT(error_for("kinds = [\"agent-runtime\"]\nresumes_conversations = \"yes\"\n"),
               Catch::Contains("'resumes_conversations' must be true or false, found a string"));
    CHECK(error_for("kinds = [\"agent-runtime\"]\nresumes_conversations = true\n") == "(accepted)");
    CHECK_THAT(error_for(tracker + "scripted_only = true\n"), Catch::Contains("'scripted_only' is only for hooks plugins"));
    CHECK_THAT(error_for("kinds = [\"hooks\"]\nscripted_only = 1\n"),
               Catch::Contains("'scripted_only' must be true or false, found an integer"));
    CHECK(error_for("kinds = [\"hooks\"]\nscripted_only = true\n") == "(accepted)");
    CHECK_THAT(error_for(tracker + "secrets_env = [\"A\"]\n"),
               Catch::Contains(at + "4:1: invalid manifest: 'secrets_env' is not a manifest key this host knows"));
    CHECK_THAT(error_for(tracker + "version = 1\n"), Catch::Contains("'version' must be a string, found an integer"));
    CHECK_THAT(error_for(tracker + "trackers = [\"t\"]\n[settings.path]\nrequired = \"yes\"\n"),
               Catch::Contains("'settings.path.required' must be true or false, found a string"));
    CHECK_THAT(error_for(tracker + "[settings]\npath = \"string\"\n"), Catch::Contains("'settings.path' must be a table"));
    CHECK_THAT(error_for(tracker + "[settings.path]\ntype = \"str\"\n"), Catch::Contains("'settings.path.type' is 'str'"));
    CHECK_THAT(error_for("kinds = [\"hooks\"]\ntrackers = [\"t\"]\n"), Catch::Contains("'trackers' is only for tracker plugins"));
    CHECK_THAT(error_for("kinds = [\"tracker\"]\nabi_major = 1\n"), Catch::Contains("invalid manifest"));
    CHECK(error_for(tracker + "trackers = [\"t\"]\nsecret_env = [\"T_TOKEN\"]\nsettings_from = \"pull_command\"\n") ==
          "(accepted)");
    // Where the code runs: a library (in the host or isolated) or a program, never both.
    CHECK(error_for(tracker + "executable = \"tracker.py\"\n") == "(accepted)");
    CHECK(error_for(tracker + "isolation = \"process\"\n") == "(accepted)");
    CHECK_THAT(error_for(tracker + "executable = \"t.py\"\nlibrary = \"libt.so\"\n"),
               Catch::Contains("'executable' and 'library' exclude each other"));
    // Agent runtimes too: a program, or a library kept out of the host.
    CHECK(error_for("kinds = [\"agent-runtime\"]\nruntimes = [\"r\"]\nexecutable = \"agent.py\"\n") == "(accepted)");
    CHECK(error_for("kinds = [\"agent-runtime\"]\nruntimes = [\"r\"]\nisolation = \"process\"\n") == "(accepted)");
    CHECK_THAT(error_for(tracker + "isolation = \"sandbox\"\n"),
               Catch::Contains("'isolation' is 'sandbox' (expected \"in-process\" or \"process\")"));
    CHECK_THAT(error_for(tracker + "executable = \"t.py\"\nisolation = \"in-process\"\n"),
               Catch::Contains("'isolation' of a program is always \"process\""));
    REQUIRE(error_for(tracker + "executable = \"tracker.py\"\n") == "(accepted)");
    auto program = plugins::read_manifest(dir / "x.toml");
    REQUIRE(program.has_value());
    CHECK(program->isolation == plugins::Isolation::process);
    CHECK(program->library.empty());
}

TEST_CASE("manifest: a tracker's secret_env reaches hooks but not agents, unless a profile passes it", "[plugins][e2e]") {
    vik::test::Project p;
    p.issues(R"([{"id":"S-1","title":"t","state":"todo"}])");
    for (const char *who : {"plain", "passed"})
        p.agent(std::string(who) + ".sh", "#!/bin/sh\ncat >/dev/null\nprintf '%s' \"${VIK_PROBE_SECRET-unset}\" > " +
                                              (p.dir / (std::string("agent-") + who + ".txt")).string() + "\n");
    vik::test::write_file(p.workflow(),
                          "loop: {max_iterations: 1}\nagents:\n"
                          "  plain: {runtime: scripted, model: none, settings: {command: " +
                              (p.dir / "plain.sh").string() +
                              "}}\n"
                              "  passed: {runtime: scripted, model: none, pass_env: [VIK_PROBE_SECRET], settings: {command: " +
                              (p.dir / "passed.sh").string() +
                              "}}\n"
                              "issues:\n  tracker: {kind: probe, path: issues.json, log: pulls.log}\n"
                              "issue:\n  hooks:\n    after_create: printf '%s' \"$VIK_PROBE_SECRET\" > " +
                              (p.dir / "hook.txt").string() +
                              "\n"
                              "  stages:\n    one: {when: {state: todo}, agent: plain, prompt: p}\n"
                              "    two: {when: {state: todo}, agent: passed, prompt: p}\n");
    auto r = vik::test::run_host({"--plugins", vik::test::plugin_dir().string(), "--plugins",
                                  (test_plugin_root() / "probe").string(), "run", p.workflow().string()},
                                 p.dir.path, {"VIK_PROBE_SECRET=s3cret-from-env"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out + r.err, Catch::Contains("secrets withheld from the process environment names=VIK_PROBE_SECRET"));
    CHECK(vik::test::read_file(p.dir / "hook.txt") == "s3cret-from-env");
    CHECK(vik::test::read_file(p.dir / "agent-plain.txt") == "unset");
    CHECK(vik::test::read_file(p.dir / "agent-passed.txt") == "s3cret-from-env");
}
