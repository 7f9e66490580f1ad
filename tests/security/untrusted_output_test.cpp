// Text from agents and issues stays data in everything the host writes: JSON lines stay valid
// UTF-8 JSON, console lines carry no terminal controls or forged line breaks, session files are
// bounded, and a full disk is reported once without stopping the host.
#include "e2e/e2e_support.hpp"
#include "session/session_recorder.hpp"
#include "util/untrusted_text.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <sys/mount.h>
#include <sys/stat.h>

using namespace vik::test;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// Every line of `file` is a JSON object (Boost.JSON refuses invalid UTF-8, as JSON requires).
size_t valid_json_lines(const fs::path &file) {
    std::string text = read_file(file);
    size_t lines = 0, start = 0, nl;
    while ((nl = text.find('\n', start)) != std::string::npos) {
        boost::system::error_code ec;
        json::value v = json::parse(text.substr(start, nl - start), ec);
        INFO(file.string() << " line " << lines + 1 << ": " << text.substr(start, nl - start));
        REQUIRE_FALSE(ec);
        REQUIRE(v.is_object());
        ++lines;
        start = nl + 1;
    }
    CHECK(start == text.size()); // no half line at the end
    return lines;
}

unsigned mode_of(const fs::path &p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

// A tmpfs of `kib` KiB mounted on `dir` for the test's life; empty reason when mounted.
struct SmallDisk {
    fs::path dir;
    std::string skipped;
    SmallDisk(fs::path where, int kib) : dir(std::move(where)) {
        fs::create_directories(dir);
        std::string opts = "size=" + std::to_string(kib) + "k,mode=0700";
        if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) != 0)
            skipped = std::string("cannot mount a tmpfs (") + std::strerror(errno) + "); needs root or CAP_SYS_ADMIN";
    }
    ~SmallDisk() {
        if (skipped.empty()) ::umount2(dir.c_str(), MNT_DETACH);
    }
};

} // namespace

TEST_CASE("untrusted text: escaping helpers keep UTF-8, escape controls and show bad bytes", "[security]") {
    using namespace vik::util;
    CHECK(to_valid_utf8("ok \xc3\xa9") == "ok \xc3\xa9");
    CHECK(to_valid_utf8("a\xff"
                        "b\xc3") == "a\xEF\xBF\xBD"
                                    "b\xEF\xBF\xBD");
    CHECK(to_valid_utf8("\xed\xa0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); // a UTF-16 surrogate
    CHECK(to_valid_utf8("\xc0\xaf") == "\xEF\xBF\xBD\xEF\xBF\xBD");                 // overlong '/'
    CHECK(escape_for_terminal("red \x1b[31mX\r\nnext\ttab \xe2\x80\xae rtl \xc2\x9b csi \xff") ==
          "red \\u001b[31mX\\r\\nnext\ttab \\u202e rtl \\u009b csi \\xff");
    CHECK(escape_for_terminal("caf\xc3\xa9 \xe2\x9c\x93") == "caf\xc3\xa9 \xe2\x9c\x93");
}

TEST_CASE("session file: hostile agent events stay valid JSON lines and the file is private", "[security][session]") {
    TempDir dir;
    fs::path file = dir / "sessions" / "X-1" / "work-1.jsonl";
    {
        vik::session::SessionRecorder rec(file, "s-1", "X-1", "work");
        rec.record("{\"kind\":\"message\",\"text\":\"bad \xff byte \\u001b[2J\"}");
        rec.record("not json \x1b]0;title\x07 \xc3");
        rec.record("{\"kind\":\"stderr\",\"line\":\"k\xfe\"}");
        CHECK(rec.snapshot().at("last_message") == "bad \xEF\xBF\xBD byte \x1b[2J");
    }
    REQUIRE(valid_json_lines(file) == 3);
    auto text = read_file(file);
    CHECK_THAT(text, Catch::Contains(R"("raw":"not json \u001b]0;title\u0007 )"
                                     "\xEF\xBF\xBD\""));
    CHECK(mode_of(file) == 0600);
    CHECK(mode_of(file.parent_path()) == 0700);
    CHECK(mode_of(file.parent_path().parent_path()) == 0700);
}

TEST_CASE("session file: past its size cap one truncated event is written and tokens still count", "[security][session]") {
    TempDir dir;
    fs::path file = dir / "s.jsonl";
    vik::session::SessionRecorder rec(file, "s-1", "X-1", "work", {4096});
    std::string big(500, 'x');
    for (int i = 0; i < 20; ++i)
        rec.record(R"({"kind":"message","text":")" + big + "\"}");
    for (int i = 0; i < 3; ++i)
        rec.record(R"({"kind":"token_usage","input":10,"output":1})");
    auto lines = valid_json_lines(file);
    CHECK(fs::file_size(file) < 4096 + 300);
    auto text = read_file(file);
    CHECK(count(text, R"("kind":"truncated")") == 1);
    CHECK_THAT(text, Catch::Contains("session file reached its limit of 4096 bytes; later events are not written"));
    CHECK(lines < 20);
    const auto &snap = rec.snapshot();
    CHECK(snap.at("tokens").at("input") == 30);
    CHECK(snap.at("truncated") == true);
    CHECK(snap.at("events_not_written").as_int64() == static_cast<int64_t>(23 - (lines - 1)));
    CHECK(snap.at("write_error").is_null());
}

TEST_CASE("session file: a full disk marks the session and stops appends, tokens still count", "[security][session]") {
    // /dev/full takes the open and refuses every write with ENOSPC.
    vik::session::SessionRecorder rec("/dev/full", "s-1", "X-1", "work");
    rec.record(R"({"kind":"message","text":"hello"})");
    rec.record(R"({"kind":"token_usage","input":4,"output":2})");
    rec.finish("completed", "");
    const auto &snap = rec.snapshot();
    CHECK(snap.at("write_error") == "cannot write /dev/full: No space left on device");
    CHECK(snap.at("events_not_written") == 2);
    CHECK(snap.at("tokens").at("input") == 4);
    CHECK(snap.at("state") == "completed");
}

TEST_CASE("run: agent and hook output cannot put terminal controls or forged lines into the logs", "[security][e2e]") {
    Project p;
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\n"
                        "printf '{\"kind\":\"message\",\"text\":\"red \\\\u001b[31mEVIL \\\\u202e exe\"}\\n'\n"
                        "printf 'stderr \\033[2J \\377\\n' >&2\n"
                        "printf 'not json \\033]0;pwned\\007 \\377\\n'\n");
    p.agent("hook.sh", "#!/bin/sh\nprintf 'oops\\n2030-01-01T00:00:00.000Z info  forged line\\n' >&2\nexit 1\n");
    p.issues(R"([{"id":"H-1","title":"t","state":"todo"},{"id":"H-2","title":"t","state":"later"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt: p}\n"
                             "    veto: {when: {state: later}, agent: bot, prompt: p, hooks: {before_run: " +
                                 (p.dir / "hook.sh").string() + "}}\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find('\x1b') == std::string::npos);
    CHECK(r.out.find('\xff') == std::string::npos);
    CHECK_THAT(r.out, Catch::Contains("not json \\u001b]0;pwned\\u0007 \\xff"));
    CHECK_THAT(r.out, Catch::Contains("oops\\n2030-01-01T00:00:00.000Z info  forged line"));
    CHECK(r.out.find("\n2030-01-01T00:00:00.000Z") == std::string::npos);
    for (auto &e : fs::directory_iterator(p.scoped() / "logs"))
        CHECK(valid_json_lines(e.path()) > 0);
    auto files = p.session_files("H-1");
    REQUIRE(files.size() == 1);
    CHECK(valid_json_lines(files[0]) >= 3);
}

TEST_CASE("run: a full disk under the root is reported once and the host finishes its work", "[security][e2e]") {
    Project p;
    SmallDisk disk(p.dir / ".vik", 96);
    if (!disk.skipped.empty()) {
        WARN("skipped: " << disk.skipped);
        return;
    }
    // ~200 KiB of events into a 96 KiB disk.
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\nbig=$(head -c 4000 /dev/zero | tr '\\0' x)\n"
                        "for i in $(seq 50); do echo \"{\\\"kind\\\":\\\"message\\\",\\\"text\\\":\\\"$big\\\"}\"; done\n"
                        "echo '{\"kind\":\"token_usage\",\"input\":3,\"output\":4}'\necho '{\"kind\":\"completed\"}'\n");
    p.issues(R"([{"id":"F-1","title":"t","state":"todo"}])");
    write_file(p.workflow(),
               workflow_text("  max_iterations: 1\n", "    settings: {command: " + (p.dir / "agent.sh").string() + "}\n",
                             "    work: {when: {state: todo}, agent: bot, prompt: p}\n"));
    auto r = p.run();
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(count(r.out, "session file write failed") == 1);
    CHECK_THAT(r.out, Catch::Contains("No space left on device; later events are not recorded (token counts still are)"));
    CHECK_THAT(r.out, Catch::Contains("session finished issue_id=F-1 stage=work"));
    CHECK_THAT(r.out, Catch::Contains("input_tokens=3 output_tokens=4"));
    CHECK(count(r.err, "cannot write log file") == 1);
    CHECK_THAT(r.err, Catch::Contains("No space left on device; log lines are lost until writing succeeds again"));
    auto files = p.session_files("F-1");
    REQUIRE(files.size() == 1);
    valid_json_lines(files[0]); // whole lines only, even on a full disk
    for (auto &e : fs::directory_iterator(p.scoped() / "logs"))
        valid_json_lines(e.path());
}

TEST_CASE("session file: events are kept as the runtime wrote them with their time added, one write per flush",
          "[security][session]") {
    TempDir dir;
    fs::path file = dir / "s.jsonl";
    vik::session::SessionRecorder rec(file, "s-1", "X-1", "work");
    rec.record(R"({"kind":"message","text":"caf\u00e9 \"quoted\"","extra":{"n":1.5,"list":[1,2]}} )");
    rec.record("{\"kind\":\"tool_call\",\n  \"name\":\"spread over lines\"}");
    rec.record(R"({"kind":"token_usage","input":7,"output":3,"cache_read":2,"cost_usd":0.25,"at":"forged"})");
    rec.record(R"({"kind":"session_started","session_id":"prov-1"})");
    // Text after the object (a runtime's bug): not spliced into, recorded as what it is.
    rec.record(R"({"kind":"message","text":"one"}} {"kind":"message","text":"two"})");
    // Buffered: nothing reached the file before the flush.
    CHECK(fs::file_size(file) == 0);
    rec.flush();
    auto text = read_file(file);
    REQUIRE(valid_json_lines(file) == 5);
    CHECK(rec.event_problem() == "it is not JSON (extra data)");
    std::vector<std::string> lines;
    for (size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
        lines.push_back(text.substr(at, nl - at));
    // As written (escapes and number spelling kept), its time spliced in before the last brace.
    CHECK_THAT(lines[0],
               Catch::StartsWith(R"({"kind":"message","text":"caf\u00e9 \"quoted\"","extra":{"n":1.5,"list":[1,2]},"at":")"));
    // Not one line as written, or carrying its own "at": rewritten through the tree.
    CHECK_THAT(lines[1], Catch::StartsWith(R"({"kind":"tool_call","name":"spread over lines","at":")"));
    CHECK(count(lines[2], "\"at\"") == 1);
    CHECK_THAT(lines[2], !Catch::Contains("forged"));
    const auto &snap = rec.snapshot();
    CHECK(snap.at("last_message") == "caf\xC3\xA9 \"quoted\"");
    CHECK(snap.at("tokens").at("input") == 7);
    CHECK(snap.at("tokens").at("cache_read") == 2);
    CHECK(snap.at("cost_usd") == 0.25);
    CHECK(snap.at("provider_session_id") == "prov-1");
    CHECK(rec.events() == 5);
}

TEST_CASE("session file: an event outside the vocabulary is kept as sent and its problem named", "[session]") {
    TempDir dir;
    vik::session::SessionRecorder rec(dir / "s.jsonl", "s-1", "X-1", "work");
    auto problem = [&](const std::string &event) {
        rec.record(event);
        return rec.event_problem();
    };
    // Valid, through either path (one line as written, or spread over lines: the tree).
    CHECK(problem(R"({"kind":"message","text":"hi"})").empty());
    CHECK(problem("{\"kind\":\"token_usage\",\n\"input\":7,\"output\":3,\"cost_usd\":0.5}").empty());
    CHECK(problem(R"({"kind":"notice","level":"warning","text":"stream retried"})").empty());
    // A field the host does not read for that kind may hold anything (a tool's input and output).
    CHECK(problem(R"({"kind":"tool_call","name":"sh","input":"ls","output":{"files":2},"text":7})").empty());
    // Invalid, on the fast path and through the tree.
    CHECK(problem(R"({"kind":"thinking","text":"hm"})") ==
          "its kind 'thinking' is not in the event vocabulary (docs/runtimes.md)");
    CHECK(problem("{\"kind\":\"thinking\",\n\"text\":\"hm\"}") ==
          "its kind 'thinking' is not in the event vocabulary (docs/runtimes.md)");
    CHECK(problem(R"({"kind":"message","text":5})") == "its 'text' is not a string");
    CHECK(problem(R"({"kind":"token_usage","input":"7","output":3})") == "its 'input' is not an integer");
    CHECK(problem(R"({"kind":"token_usage","input":1.5})") == "its 'input' is not an integer");
    CHECK(problem(R"({"kind":"session_started","session_id":{"id":1}})") == "its 'session_id' is not a string");
    CHECK(problem(R"({"kind":7})") == "its kind is not a string");
    CHECK(problem(R"(["kind","message"])") == "it is not a JSON object with a kind");
    CHECK_THAT(problem("{not json"), Catch::StartsWith("it is not JSON"));
    // The next valid event clears it; everything was recorded.
    CHECK(problem(R"({"kind":"completed"})").empty());
    rec.flush();
    CHECK(valid_json_lines(dir / "s.jsonl") == 14);
}
