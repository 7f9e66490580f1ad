// The tracker's token stays in the host: agents (same user) cannot read it from the host's
// /proc files or memory, and do not inherit it; hooks still get it. Through the real binary.
#include "e2e/e2e_support.hpp"
#include "security/security_support.hpp"

#include <catch2/catch.hpp>

using namespace vik::test;
namespace fs = std::filesystem;

namespace {

const std::string kToken = "s3cret-Tok3n-9f2e71";

// probe.sh LABEL: finds the `vik-host run` above it, then tries what a curious agent would.
void write_probe(Project &p) {
    fs::path out = p.dir.path;
    p.agent(
        "probe.sh",
        "#!/bin/sh\nout=" + out.string() +
            "\nlabel=$1\npid=$$\nhost=\n"
            "while [ \"$pid\" -gt 1 ]; do\n"
            "  pid=$(sed 's/.*) [A-Za-z] \\([0-9]*\\) .*/\\1/' /proc/$pid/stat)\n"
            "  case \"$(tr '\\000' ' ' < /proc/$pid/cmdline)\" in *vik-host\\ run*) host=$pid; break;; esac\n"
            "done\n"
            "echo \"$host\" > $out/$label-host.txt\n"
            "if cat /proc/$host/environ > $out/$label-environ.txt 2>/dev/null; then echo readable; else echo refused; fi"
            " > $out/$label-environ-result.txt\n"
            "if (exec 3< /proc/$host/mem) 2>/dev/null; then echo readable; else echo refused; fi > $out/$label-mem-result.txt\n"
            "python3 -c 'import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))' > $out/$label-dumpable.txt 2>&1\n"
            "env > $out/$label-env.txt\n");
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n" + (out / "probe.sh").string() +
                            " agent-$VIK_ISSUE_ID\necho '{\"kind\":\"completed\"}'\n");
}

// Two issues: one with shell metacharacters and a URL, one whose body passes the env cap.
std::string big_body() {
    std::string s;
    while (s.size() < 200 * 1024)
        s += "\xE2\x82\xAC"; // U+20AC, 3 bytes
    return s;
}

void write_project(Project &p) {
    write_probe(p);
    boost::json::array issues{
        boost::json::object{{"id", "SEC-1"},
                            {"title", "t"},
                            {"state", "todo"},
                            {"description", "it's `rm -rf $HOME` \"quoted\"\nline 2"},
                            {"url", "https://tracker.example/SEC-1"}},
        boost::json::object{{"id", "SEC-2"}, {"title", "t2"}, {"state", "todo"}, {"description", big_body()}}};
    write_file(p.dir / "issues.json", boost::json::serialize(issues));
    fs::path out = p.dir.path;
    write_file(p.workflow(), "loop: {max_iterations: 1}\n"
                             "agents:\n  bot: {runtime: scripted, model: none, settings: {command: " +
                                 (out / "agent.sh").string() +
                                 "}}\n"
                                 "issues:\n  tracker: {kind: file, path: issues.json, token_env: MY_TRACKER_TOKEN}\n"
                                 "issue:\n  hooks:\n    after_create: |\n"
                                 "      printf '%s' \"$MY_TRACKER_TOKEN\" > " +
                                 out.string() +
                                 "/hook-token-$VIK_ISSUE_ID.txt\n"
                                 "      printf '%s' \"$VIK_ISSUE_BODY\" > " +
                                 out.string() +
                                 "/body-$VIK_ISSUE_ID.txt\n"
                                 "      printf '%s' \"${VIK_ISSUE_URL-unset}\" > " +
                                 out.string() +
                                 "/url-$VIK_ISSUE_ID.txt\n"
                                 "      " +
                                 (out / "probe.sh").string() +
                                 " hook-$VIK_ISSUE_ID\n"
                                 "  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n");
}

} // namespace

TEST_CASE("security: a same-user agent or hook cannot read the host's environment or memory, only hooks get the token",
          "[security][e2e]") {
    Unprivileged nobody;
    if (auto why = Unprivileged::unavailable(); !why.empty()) VIK_SKIP(why);
    Project p;
    write_project(p);
    give_to(p.dir.path, nobody.uid, nobody.gid);
    auto r = run_host_as(nobody.uid, nobody.gid, {"run", p.workflow().string()}, p.dir.path, {"MY_TRACKER_TOKEN=" + kToken});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto text = [&](const std::string &name) { return read_file(p.dir / name); };
    for (const char *who : {"agent-SEC-1", "hook-SEC-1"}) {
        INFO(who);
        std::string host_pid = text(std::string(who) + "-host.txt");
        CHECK(host_pid.size() > 1); // the probe found the host above it
        CHECK(text(std::string(who) + "-environ-result.txt") == "refused\n");
        CHECK(text(std::string(who) + "-environ.txt").find(kToken) == std::string::npos);
        CHECK(text(std::string(who) + "-mem-result.txt") == "refused\n");
        // execve gave the child its dumpable flag back: only the host is closed.
        CHECK(text(std::string(who) + "-dumpable.txt") == "1\n");
    }
    CHECK(text("agent-SEC-1-env.txt").find(kToken) == std::string::npos);
    CHECK(text("agent-SEC-1-env.txt").find("VIK_ISSUE_ID=SEC-1") != std::string::npos);
    CHECK(text("hook-token-SEC-1.txt") == kToken);
    CHECK(text("hook-SEC-1-env.txt").find("MY_TRACKER_TOKEN=" + kToken) != std::string::npos);
    CHECK(r.out.find("secrets withheld from the process environment names=MY_TRACKER_TOKEN") != std::string::npos);
    CHECK(r.out.find(kToken) == std::string::npos);
}

TEST_CASE("security: the withheld token is erased from the block /proc/<pid>/environ shows, even to a privileged reader",
          "[security][e2e]") {
    // As root the agent may read the host's environ (CAP_SYS_PTRACE): the value must not be there.
    Project p;
    write_project(p);
    auto r = run_host({"run", p.workflow().string()}, p.dir.path, {"MY_TRACKER_TOKEN=" + kToken});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    std::string environ_text = read_file(p.dir / "agent-SEC-1-environ.txt");
    if (read_file(p.dir / "agent-SEC-1-environ-result.txt") != "readable\n") VIK_SKIP("this root has no CAP_SYS_PTRACE");
    CHECK(environ_text.find("MY_TRACKER_TOKEN=") != std::string::npos);
    CHECK(environ_text.find(kToken) == std::string::npos);
    CHECK(read_file(p.dir / "hook-token-SEC-1.txt") == kToken);
    CHECK(read_file(p.dir / "agent-SEC-1-env.txt").find(kToken) == std::string::npos);
}

TEST_CASE("security: hooks read the issue's body and URL from VIK_ISSUE_BODY and VIK_ISSUE_URL, the body cut at 100 KiB",
          "[security][e2e]") {
    Project p;
    write_project(p);
    auto r = run_host({"run", p.workflow().string()}, p.dir.path);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(read_file(p.dir / "body-SEC-1.txt") == "it's `rm -rf $HOME` \"quoted\"\nline 2");
    CHECK(read_file(p.dir / "url-SEC-1.txt") == "https://tracker.example/SEC-1");
    CHECK(read_file(p.dir / "url-SEC-2.txt") == "unset");
    std::string body = read_file(p.dir / "body-SEC-2.txt");
    CHECK(body.size() == 102399); // 100 KiB, less the euro sign that did not fit whole
    CHECK(body == big_body().substr(0, 102399));
    CHECK(read_file(p.dir / "agent-SEC-2-env.txt").find("VIK_ISSUE_BODY=\xE2\x82\xAC") != std::string::npos);
}
