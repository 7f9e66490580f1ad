// The outcome file's handling (stage_outcomes.hpp) against a real workspace directory: what an
// agent can put at the path (links in and out, a directory, a FIFO, too much, not JSON, wrong
// types) is read as data or refused with a reason, never followed out of the workspace, never
// blocking, and clearing removes the entry itself.
#include "orchestrator/stage_outcomes.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

using namespace vik;
using namespace vik::orchestrator;
using vik::test::read_file;
using vik::test::TempDir;
using vik::test::write_file;
namespace fs = std::filesystem;

namespace {

workflow::OutcomeSpec spec(const std::string &file, std::vector<std::pair<std::string, std::string>> fields = {}) {
    workflow::OutcomeSpec s;
    s.file = file;
    s.fields = std::move(fields);
    return s;
}

} // namespace

TEST_CASE("stage outcomes: a valid file is read, and what is not an outcome is refused with the reason", "[outcomes]") {
    TempDir dir;
    fs::path ws = dir / "ws";
    fs::create_directories(ws / ".vik");
    auto typed = spec(".vik/result.json", {{"ok", "boolean"}, {"n", "integer"}, {"tags", "array"}});
    write_file(ws / ".vik/result.json", R"({"ok": true, "n": 3.0, "tags": ["a"], "more": {"x": 1}})");
    auto good = read_outcome(ws, typed);
    REQUIRE(good.has_value());
    CHECK(good->at("more").at("x") == 1); // undeclared fields are kept

    auto refused = [&](const std::string &text) {
        write_file(ws / ".vik/result.json", text);
        auto r = read_outcome(ws, typed);
        REQUIRE_FALSE(r.has_value());
        return r.error();
    };
    CHECK(refused("not json") == "'.vik/result.json' is not valid JSON: syntax error");
    CHECK(refused("[1, 2]") == "'.vik/result.json' holds a JSON array, not an object");
    CHECK(refused(R"({"ok": true, "tags": []})") == "'.vik/result.json' has no field 'n' (integer)");
    CHECK(refused(R"({"ok": "yes", "n": 1, "tags": []})") == "'.vik/result.json' field 'ok' is a string, expected boolean");
    CHECK(refused(R"({"ok": true, "n": 1.5, "tags": []})") == "'.vik/result.json' field 'n' is a number, expected integer");
    CHECK(refused(R"({"ok": true, "n": 1e300, "tags": []})") == "'.vik/result.json' field 'n' is a number, expected integer");
    CHECK(refused(std::string(workflow::kMaxOutcomeBytes + 1, ' ')) == "'.vik/result.json' is larger than 64 KiB");
    fs::remove(ws / ".vik/result.json");
    CHECK(read_outcome(ws, typed).error() == "the agent wrote no outcome file '.vik/result.json' (the stage's outcome.file)");
}

TEST_CASE("stage outcomes: links out of the workspace, directories and FIFOs are refused without blocking", "[outcomes]") {
    TempDir dir;
    fs::path ws = dir / "ws";
    fs::create_directories(ws);
    write_file(dir / "secret.json", R"({"token": "s3cret"})");
    auto s = spec("result.json");

    fs::create_symlink(dir / "secret.json", ws / "result.json");
    auto out = read_outcome(ws, s);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error() == "'result.json' leads out of the workspace (a symbolic link?); it is not read");
    fs::remove(ws / "result.json");

    fs::create_symlink(dir.path, ws / "up"); // a directory link out, then the file through it
    CHECK(read_outcome(ws, spec("up/secret.json")).error() ==
          "'up/secret.json' leads out of the workspace (a symbolic link?); it is not read");

    fs::create_directories(ws / "result.json");
    CHECK(read_outcome(ws, s).error() == "'result.json' is not a regular file");
    fs::remove(ws / "result.json");

    REQUIRE(::mkfifo((ws / "result.json").c_str(), 0600) == 0); // no writer: an open without O_NONBLOCK would hang
    CHECK(read_outcome(ws, s).error() == "'result.json' is not a regular file");
    fs::remove(ws / "result.json");

    write_file(ws / "real.json", R"({"ok": true})"); // a link inside the workspace is followed
    fs::create_symlink("real.json", ws / "result.json");
    CHECK(read_outcome(ws, s).has_value());
}

TEST_CASE("stage outcomes: clearing removes the entry itself, never what a link points to", "[outcomes]") {
    TempDir dir;
    fs::path ws = dir / "ws";
    fs::create_directories(ws / "src");
    write_file(ws / "src/main.cpp", "int main() {}\n");
    write_file(dir / "outside.txt", "keep\n");

    fs::create_symlink("src/main.cpp", ws / "result.json");
    REQUIRE(clear_outcome(ws, spec("result.json")).has_value());
    CHECK_FALSE(fs::exists(fs::symlink_status(ws / "result.json")));
    CHECK(read_file(ws / "src/main.cpp") == "int main() {}\n");

    fs::create_symlink(dir / "outside.txt", ws / "result.json");
    REQUIRE(clear_outcome(ws, spec("result.json")).has_value());
    CHECK_FALSE(fs::exists(fs::symlink_status(ws / "result.json")));
    CHECK(read_file(dir / "outside.txt") == "keep\n");

    fs::create_directories(ws / "result.json/deep");
    write_file(ws / "result.json/deep/x", "x");
    REQUIRE(clear_outcome(ws, spec("result.json")).has_value());
    CHECK_FALSE(fs::exists(ws / "result.json"));

    fs::create_symlink(dir.path, ws / "up"); // a parent that leads out: nothing outside is touched
    auto out = clear_outcome(ws, spec("up/outside.txt"));
    REQUIRE_FALSE(out.has_value());
    CHECK(read_file(dir / "outside.txt") == "keep\n");

    CHECK(clear_outcome(ws, spec("missing/result.json")).has_value()); // nothing there: nothing to do
    CHECK(clear_outcome(ws, spec("result.json")).has_value());
}
