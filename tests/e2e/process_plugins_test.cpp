// Out-of-process plugins through the real binary: the shipped Python tracker example runs a
// workflow end to end (doctor, plugin check, tracker pull, run), and a C tracker that segfaults,
// run with isolation = "process", costs its child process, not the host.
#include "e2e/e2e_support.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace vik::test;
namespace fs = std::filesystem;
namespace json = boost::json;

TEST_CASE("out-of-process plugins: the Python tracker example runs a workflow end to end", "[plugins][process][e2e]") {
    TempDir dir;
    fs::copy(source_dir() / "examples" / "python-tracker", dir.path, fs::copy_options::recursive);
    std::string plugins = (dir / "plugins").string();
    std::string workflow = (dir / "workflow.yml").string();
    auto doctor = run_host({"--plugins", plugins, "doctor", workflow}, dir.path);
    CHECK(doctor.out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    auto check = run_host({"plugin", "check", plugins, "--settings", R"({"path": "issues.json"})"}, dir.path);
    INFO(check.out << check.err);
    CHECK(check.exit_code == 0);
    CHECK_THAT(check.out, Catch::Contains("ok: python-tracker 0.1.0 (tracker) runs " + (dir / "plugins" / "tracker.py").string() +
                                          " as a child process"));
    auto pulled = run_host({"--plugins", plugins, "tracker", "pull", workflow}, dir.path);
    INFO(pulled.out << pulled.err);
    CHECK(pulled.exit_code == 0);
    CHECK_THAT(pulled.out, Catch::Contains("\"PY-2\""));
    auto r = run_host({"--plugins", plugins, "run", workflow}, dir.path, {}, 120);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("[plugin python-tracker] serving issues from"));
    auto issues = json::parse(read_file(dir / "issues.json")).as_array();
    REQUIRE(issues.size() == 2);
    CHECK(issues[0].at("state") == "done");
    CHECK(issues[1].at("state") == "done");
    CHECK_THAT(r.out, Catch::Contains("workspace removed issue_id=PY-1"));
}

TEST_CASE("out-of-process plugins: the Python runtime example runs a workflow end to end", "[plugins][process][e2e]") {
    TempDir dir;
    fs::copy(source_dir() / "examples" / "python-runtime", dir.path, fs::copy_options::recursive);
    std::string plugins = (dir / "plugins").string();
    std::string workflow = (dir / "workflow.yml").string();
    auto doctor = run_host({"--plugins", plugins, "doctor", workflow}, dir.path);
    CHECK(doctor.out == "Vik doctor shows 0 error(s), 0 warning(s)\n");
    // A runtime's manifest settings are its profiles' (doctor checks them per agent), not create's.
    auto check = run_host({"plugin", "check", plugins}, dir.path);
    INFO(check.out << check.err);
    CHECK(check.exit_code == 0);
    auto r = run_host({"--plugins", plugins, "run", workflow}, dir.path, {}, 120);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    auto issues = json::parse(read_file(dir / "issues.json")).as_array();
    REQUIRE(issues.size() == 2);
    CHECK(issues[0].at("state") == "done");
    CHECK(issues[1].at("state") == "done");
    // The agent's lines came back as message events, in the session file the host wrote.
    std::string sessions;
    for (const auto &e : fs::recursive_directory_iterator(dir.path))
        if (e.path().extension() == ".jsonl") sessions += read_file(e.path());
    CHECK_THAT(sessions, Catch::Contains(R"("kind":"message","text":"working on RT-1")"));
    CHECK_THAT(sessions, Catch::Contains(R"("text":"moved RT-2 to done")"));
    // The agent was known as the issue's agent: its set-state came through the control channel as a child's.
    CHECK_THAT(r.out, Catch::Contains("control request from a child issue_id=RT-1 stage=work plugin=py-runtime"));
}

TEST_CASE("out-of-process plugins: a crashing C tracker with isolation = process costs its child, not the host",
          "[plugins][process][e2e]") {
    TempDir dir;
    fs::create_directories(dir / "isolated");
    write_file(dir / "isolated" / "crashy.toml",
               "id = \"crashy-tracker\"\nversion = \"1.0.0\"\nabi_major = 1\nkinds = [\"tracker\"]\ntrackers = [\"crashy\"]\n"
               "library = \"" +
                   (test_plugin_root() / "crashy" / "libvik-crashy-tracker.so").string() + "\"\nisolation = \"process\"\n");
    write_file(dir / "agent.sh", kOkAgent);
    fs::permissions(dir / "agent.sh", fs::perms::owner_all);
    write_file(dir / "workflow.yml",
               "loop: {max_iterations: 2}\nagents:\n  bot: {runtime: scripted, model: none, settings: {command: " +
                   (dir / "agent.sh").string() +
                   "}}\nissues:\n  tracker: {kind: crashy}\n  pull: {idle_sec: 1}\nissue:\n  stages:\n"
                   "    work: {when: {state: todo}, agent: bot, prompt: hi}\n");
    auto r = run_host({"--plugins", (dir / "isolated").string(), "run", (dir / "workflow.yml").string()}, dir.path, {}, 60);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0); // the host ran its two cycles and stopped on its own
    CHECK_THAT(r.out, Catch::Contains("plugin 'crashy-tracker': its process "));
    CHECK_THAT(r.out, Catch::Contains(" during tracker.pull"));
    CHECK_THAT(r.err + r.out, !Catch::Contains("the host stops"));

    // The same library, its manifest unchanged, isolated by the workflow instead.
    write_file(dir / "workflow.yml", read_file(dir / "workflow.yml") + "plugins: {isolate: [crashy-tracker]}\n");
    auto w = run_host({"--plugins", (test_plugin_root() / "crashy").string(), "run", (dir / "workflow.yml").string()}, dir.path,
                      {}, 60);
    INFO(w.out << w.err);
    CHECK(w.exit_code == 0);
    CHECK_THAT(w.out, Catch::Contains("plugin 'crashy-tracker': its process "));
    CHECK_THAT(w.out, Catch::Contains(" during tracker.pull"));
}

TEST_CASE("plugins: a workflow chooses its hooks plugins and their order, and gives each its settings",
          "[plugins][process][e2e]") {
    TempDir dir;
    fs::create_directories(dir / "hooks");
    // A hooks program (out of process) that logs each event with the label its settings give it.
    write_file(dir / "hooks" / "py-hooks.toml", "id = \"py-hooks\"\nversion = \"1.0.0\"\nabi_major = 1\nkinds = [\"hooks\"]\n"
                                                "executable = \"hooks.py\"\n[settings.label]\ntype = \"string\"\n"
                                                "required = true\n");
    write_file(dir / "hooks" / "hooks.py", R"PY(#!/usr/bin/env python3
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
label = None
for line in sys.stdin:
    r = json.loads(line)
    if r.get("method") == "shutdown":
        break
    if r["method"] == "initialize":
        label = r["params"]["settings"]["label"]
    elif r["method"] == "hooks.on_event":
        with open(os.path.join(here, "order.log"), "a") as f:
            f.write(label + " " + r["params"]["event"] + " " + r["params"]["context"]["issue"]["id"] + "\n")
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": r["id"], "result": None}) + "\n")
    sys.stdout.flush()
)PY");
    fs::permissions(dir / "hooks" / "hooks.py", fs::perms::owner_all);
    write_file(dir / "agent.sh", kOkAgent);
    fs::permissions(dir / "agent.sh", fs::perms::owner_all);
    fs::path order = dir / "hooks" / "order.log";
    auto workflow = [&](const std::string &id, const std::string &plugins) {
        write_file(dir / "issues.json", R"([{"id":")" + id + R"(","title":"t","state":"todo"}])");
        write_file(dir / "workflow.yml",
                   "loop: {max_iterations: 1}\nagents:\n  bot: {runtime: scripted, model: none, settings: {command: " +
                       (dir / "agent.sh").string() +
                       "}}\nissues:\n  tracker: {kind: file, path: issues.json}\nissue:\n  hooks:\n"
                       "    after_create: echo shell after_create {{ issue.id }} >> " +
                       order.string() + "\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: hi}\n" + plugins);
        return (dir / "workflow.yml").string();
    };
    std::string hooks = (dir / "hooks").string();
    // A required setting missing is a doctor error naming the key.
    auto missing = run_host({"--plugins", hooks, "doctor", workflow("S-0", "plugins: {hooks: [py-hooks, shell-hooks]}\n")});
    CHECK_THAT(missing.out, Catch::Contains("'plugins.settings.py-hooks.label' is required by the hooks plugin 'py-hooks'"));
    // The program first, then the shell: the after_create script runs after the program saw it.
    auto first = run_host({"--plugins", hooks, "run",
                           workflow("S-1", "plugins:\n  hooks: [py-hooks, shell-hooks]\n  settings: {py-hooks: {label: one}}\n")},
                          dir.path, {}, 60);
    INFO(first.out << first.err);
    REQUIRE(first.exit_code == 0);
    CHECK_THAT(read_file(order), Catch::StartsWith("one workspace.after_create S-1\nshell after_create S-1\n"));
    CHECK_THAT(read_file(order), Catch::Contains("one stage.before_run S-1\n"));
    // Only the shell hooks: the program is not asked.
    fs::remove(order);
    auto second = run_host({"--plugins", hooks, "run", workflow("S-2", "plugins: {hooks: [shell-hooks]}\n")}, dir.path, {}, 60);
    INFO(second.out << second.err);
    REQUIRE(second.exit_code == 0);
    CHECK(read_file(order) == "shell after_create S-2\n");
}

TEST_CASE("plugins: a runtime's event outside the vocabulary is reported once per session, and fails it with run --strict",
          "[plugins][e2e]") {
    TempDir dir;
    write_file(dir / "agent.sh", "#!/bin/sh\ncat > /dev/null\necho '{\"kind\":\"thinking\",\"text\":\"hm\"}'\n"
                                 "echo '{\"kind\":\"message\",\"text\":5}'\necho '{\"kind\":\"completed\"}'\n");
    fs::permissions(dir / "agent.sh", fs::perms::owner_all);
    auto workflow = [&](const std::string &id) {
        write_file(dir / "issues.json", R"([{"id":")" + id + R"(","title":"t","state":"todo"}])");
        write_file(dir / "workflow.yml", "loop: {max_iterations: 1}\nagents:\n  bot: {runtime: scripted, model: none, settings: "
                                         "{command: " +
                                             (dir / "agent.sh").string() +
                                             "}}\nissues:\n  tracker: {kind: file, path: issues.json}\nissue:\n  stages:\n"
                                             "    work: {when: {state: todo}, agent: bot, prompt: hi}\n");
        return (dir / "workflow.yml").string();
    };
    auto lenient = run_host({"run", workflow("V-1")}, dir.path, {}, 60);
    INFO(lenient.out << lenient.err);
    CHECK(lenient.exit_code == 0);
    CHECK(count(lenient.out, "invalid event issue_id=V-1 stage=work") == 1);
    CHECK_THAT(lenient.out, Catch::Contains("agent=bot: its kind 'thinking' is not in the event vocabulary"));
    CHECK_THAT(lenient.out, Catch::Contains("session finished issue_id=V-1 stage=work"));
    CHECK_THAT(lenient.out, Catch::Contains("state=completed"));
    auto strict = run_host({"run", "--strict", workflow("V-2")}, dir.path, {}, 60);
    INFO(strict.out << strict.err);
    CHECK(strict.exit_code == 0);
    CHECK_THAT(strict.out, Catch::Contains("state=failed"));
    CHECK_THAT(strict.out, Catch::Contains("error=invalid event from the runtime of agent profile 'bot': its kind 'thinking' is "
                                           "not in the event vocabulary (docs/runtimes.md) (run --strict)"));
}
