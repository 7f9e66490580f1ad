// The workflow-scoped root: private modes, one owner workflow per root, and clear messages when
// this user may not read or write it (docs/operations.md "Files").
#include "daemon/state_file.hpp"
#include "e2e/e2e_support.hpp"
#include "util/private_files.hpp"

#include <catch2/catch.hpp>

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace vik::test;
namespace fs = std::filesystem;

namespace {

unsigned mode_of(const fs::path &p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
}

const char *kQuickAgent =
    "#!/bin/sh\ncat >/dev/null\necho '{\"kind\":\"token_usage\",\"input\":1,\"output\":1}'\necho '{\"kind\":\"completed\"}'\n";

std::string quick_workflow(const fs::path &agent, const std::string &workspace = "") {
    return workflow_text("  max_iterations: 1\n", "    settings: {command: " + agent.string() + "}\n",
                         "    work: {when: {state: todo}, agent: bot, prompt: p}\n") +
           workspace;
}

// vik-host run as `nobody` (setpriv), or a reason why that is not possible here.
struct AsNobody {
    std::string skipped;
    AsNobody() {
        if (::geteuid() != 0)
            skipped = "not running as root";
        else if (std::system("command -v setpriv >/dev/null 2>&1") != 0)
            skipped = "setpriv is not installed";
        else if (std::system("setpriv --reuid=nobody --regid=nogroup --clear-groups true >/dev/null 2>&1") != 0)
            skipped = "setpriv cannot switch to nobody here";
    }
    CommandResult run(const std::vector<std::string> &args, const fs::path &cwd) const {
        TempDir io;
        std::string cmd = "cd " + shell_quote(cwd.string()) +
                          " && timeout 60 setpriv --reuid=nobody --regid=nogroup --clear-groups " +
                          shell_quote(VIK_TEST_HOST_BINARY);
        for (const auto &a : args)
            cmd += " " + shell_quote(a);
        cmd += " >" + shell_quote((io / "out").string()) + " 2>" + shell_quote((io / "err").string());
        int status = std::system(cmd.c_str());
        return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(io / "out"), read_file(io / "err")};
    }
};

// A project other users may read (the temp dir is 0700 by default).
void open_to_others(const Project &p) {
    fs::permissions(p.dir.path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                                    fs::perms::others_exec);
    for (auto &e : fs::directory_iterator(p.dir.path))
        if (e.is_regular_file()) fs::permissions(e.path(), fs::perms::others_read | fs::perms::group_read, fs::perm_options::add);
}

} // namespace

TEST_CASE("files: create_private_directories makes missing parents 0700, keeps existing ones, refuses a file in the way",
          "[security]") {
    vik::test::TempDir dir;
    fs::path deep = dir / "a" / "b" / "c";
    REQUIRE_FALSE(vik::util::create_private_directories(deep));
    for (const fs::path &d : {dir / "a", dir / "a" / "b", deep}) {
        INFO(d);
        CHECK((fs::status(d).permissions() & fs::perms::all) == fs::perms::owner_all);
    }
    // An existing directory (of another mode) is left as it is.
    fs::create_directories(dir / "open");
    fs::permissions(dir / "open", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
    CHECK_FALSE(vik::util::create_private_directories(dir / "open"));
    CHECK((fs::status(dir / "open").permissions() & fs::perms::all) ==
          (fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec));
    CHECK_FALSE(vik::util::create_private_directories(dir / "open" / "x"));
    // A file where a directory should be: an error, at the file or below it.
    vik::test::write_file(dir / "file", "x");
    CHECK(vik::util::create_private_directories(dir / "file"));
    CHECK(vik::util::create_private_directories(dir / "file" / "sub"));
}

TEST_CASE("files: everything the host creates under the root is private (dirs 0700, files 0600)", "[security][e2e]") {
    Project p;
    p.agent("agent.sh", kQuickAgent);
    p.issues(R"([{"id":"M-1","title":"t","state":"todo"}])");
    write_file(p.workflow(), quick_workflow(p.dir / "agent.sh"));
    ::umask(022); // the usual umask: modes must not depend on it
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    fs::path root = p.scoped();
    for (const fs::path &d : {p.dir / ".vik", p.dir / ".vik" / "workflows", root, root / "logs", root / "sessions",
                              root / "sessions" / "M-1", root / "service", root / "issues"}) {
        INFO(d.string());
        CHECK(mode_of(d) == 0700);
    }
    size_t files = 0;
    for (auto &e : fs::recursive_directory_iterator(root)) {
        if (!e.is_regular_file()) continue;
        if (e.path().string().rfind((root / "issues").string(), 0) == 0) continue; // the agent's own files
        INFO(e.path().string());
        CHECK(mode_of(e.path()) == 0600);
        ++files;
    }
    CHECK(files >= 4); // workflow_path, run.lock, vik.log, one session (vik-error.log only with errors)
    CHECK(read_file(root / "workflow_path") == p.workflow().string() + "\n");

    // state.json lives only while a host runs: written the same way here.
    fs::path state = p.dir / "fresh" / "service" / "state.json";
    REQUIRE(vik::daemon::write_state(state, {}));
    CHECK(mode_of(state) == 0600);
    CHECK(mode_of(state.parent_path()) == 0700);

    // A root an older vik-host left 0755 is tightened at the next start.
    fs::permissions(root / "logs", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                                       fs::perms::others_exec);
    REQUIRE(p.run().exit_code == 0);
    CHECK(mode_of(root / "logs") == 0700);
}

TEST_CASE("files: two workflows whose paths share a key are refused, naming both paths", "[security][e2e]") {
    TempDir dir;
    fs::create_directories(dir / "a-b");
    fs::create_directories(dir / "a" / "b");
    write_file(dir / "agent.sh", kQuickAgent);
    fs::permissions(dir / "agent.sh", fs::perms::owner_all);
    write_file(dir / "issues.json", R"([{"id":"K-1","title":"t","state":"todo"}])");
    std::string wf = quick_workflow(dir / "agent.sh", "workspace: {root: " + (dir / "home").string() + "}\n");
    wf.replace(wf.find("cat issues.json"), 15, "cat " + (dir / "issues.json").string());
    fs::path first = dir / "a-b" / "workflow.yml", second = dir / "a" / "b-workflow.yml";
    write_file(first, wf);
    write_file(second, wf);
    std::string key = first.string();
    for (char &c : key)
        if (c == '/') c = '-';
    fs::path root = dir / "home" / "workflows" / key;

    auto one = run_host({"run", first.string()});
    INFO(one.out << one.err);
    REQUIRE(one.exit_code == 0);
    auto two = run_host({"run", second.string()});
    CHECK(two.exit_code == 1);
    std::string expected =
        "the directory " + root.string() + " belongs to the workflow " + first.string() + ", and " + second.string() +
        " maps to the same directory (vik's key replaces every '/' with '-'); give one of them its own workspace.root\n";
    CHECK(two.err == "run failed: " + expected);
    // The second workflow ran nothing in the first one's root.
    CHECK(std::distance(fs::directory_iterator(root / "sessions" / "K-1"), fs::directory_iterator()) == 1);
    for (const char *cmd : {"status", "stop", "uninstall"}) {
        auto r = run_host({cmd, second.string()});
        INFO(cmd);
        CHECK(r.exit_code == 1);
        CHECK(r.err == std::string(cmd) + " failed: " + expected);
    }
    CHECK(run_host({"status", first.string()}).exit_code == 0);
    CHECK(run_host({"run", first.string()}).exit_code == 0); // the owner still runs
}

TEST_CASE("files: status and stop by a user without rights say permission denied", "[security][daemon]") {
    AsNobody nobody;
    if (!nobody.skipped.empty()) {
        WARN("skipped: " << nobody.skipped);
        return;
    }
    Project p;
    p.agent("agent.sh", kQuickAgent);
    p.issues(R"([{"id":"P-1","title":"t","state":"todo"}])");
    write_file(p.workflow(), quick_workflow(p.dir / "agent.sh"));
    open_to_others(p);
    REQUIRE(p.run().exit_code == 0); // root's run leaves a private root behind

    auto status = nobody.run({"status", p.workflow().string()}, p.dir.path);
    CHECK(status.exit_code == 1);
    CHECK(status.out.empty());
    CHECK(status.err ==
          "status failed: permission denied: " + p.scoped().string() + " (owned by root; run this command as that user)\n");
    auto stop = nobody.run({"stop", p.workflow().string()}, p.dir.path);
    CHECK(stop.exit_code == 1);
    CHECK(stop.err ==
          "stop failed: permission denied: " + p.scoped().string() + " (owned by root; run this command as that user)\n");
    // The owner still sees its own root as it is.
    auto mine = run_host({"status", p.workflow().string()});
    CHECK(mine.exit_code == 0);
    CHECK_THAT(mine.out, Catch::StartsWith("status: not installed\n"));
}

TEST_CASE("files: run says clearly when the root is not writable", "[security][e2e]") {
    Project p;
    p.agent("agent.sh", kQuickAgent);
    p.issues(R"([{"id":"W-1","title":"t","state":"todo"}])");

    SECTION("a read-only file system") {
        fs::path home = p.dir / "ro";
        fs::create_directories(home);
        if (::mount("tmpfs", home.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0) {
            WARN("skipped: cannot mount a read-only tmpfs (" << std::strerror(errno) << ")");
            return;
        }
        write_file(p.workflow(), quick_workflow(p.dir / "agent.sh", "workspace: {root: " + home.string() + "}\n"));
        auto r = p.run();
        ::umount2(home.c_str(), MNT_DETACH);
        INFO(r.out << r.err);
        CHECK(r.exit_code == 1);
        CHECK(r.err ==
              "run failed: " + (home / "workflows" / p.scoped().filename()).string() +
                  " is not writable by root (Read-only file system); vik-host keeps its logs, sessions and workspaces under " +
                  home.string() + ": make it writable, or point workspace.root (or $VIK_HOME) at a directory root owns\n");
    }
    SECTION("a directory owned by another user") {
        AsNobody nobody;
        if (!nobody.skipped.empty()) {
            WARN("skipped: " << nobody.skipped);
            return;
        }
        write_file(p.workflow(), quick_workflow(p.dir / "agent.sh"));
        open_to_others(p);
        auto r = nobody.run({"run", p.workflow().string()}, p.dir.path);
        INFO(r.out << r.err);
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.err,
                   Catch::StartsWith("run failed: " + p.scoped().string() + " is not writable by nobody (Permission denied)"));
        CHECK_THAT(r.err, Catch::Contains("point workspace.root (or $VIK_HOME) at a directory nobody owns"));
        CHECK_FALSE(fs::exists(p.dir / ".vik"));
    }
}
