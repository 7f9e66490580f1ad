// The runtime plugins' fast path (issue 13): events written without a tree (EventWriter), and
// the common lines read without a tree (vik::sdk::FlatJson). Both must give exactly what the tree path
// gives, byte for byte: the host records the text as the plugin wrote it.
#include "../plugins/codex/codex_events.hpp"
#include "../plugins/common/agent_cli.hpp"

#include <vik/plugin.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <random>

using namespace vik::agents;
using vik::sdk::FlatJson;
namespace json = boost::json;

namespace {

std::string written(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

std::string serialized(std::string_view s) { return json::serialize(json::value(json::string(s))); }

} // namespace

TEST_CASE("agents: the event writer escapes strings as boost::json serializes them", "[agents][events]") {
    for (int c = 0; c < 256; ++c) {
        std::string one(1, static_cast<char>(c));
        if (c >= 0x80) continue; // alone, not UTF-8: a parsed document never holds it
        INFO("byte " << c);
        CHECK(written(one) == serialized(one));
        std::string padded = "plain text around " + one + " the byte, long enough for whole words";
        CHECK(written(padded) == serialized(padded));
    }
    // Random texts of quotes, backslashes, controls, ASCII and multi-byte characters, at every
    // offset from an 8-byte word boundary.
    std::mt19937 rng(13);
    const std::vector<std::string> pieces = {"a", "Z", " ", "\"", "\\", "\n", "\t", "\x01", "\x1f", "é", "→", "😀", "/", "\x7f"};
    for (int round = 0; round < 2000; ++round) {
        std::string s;
        size_t n = rng() % 40;
        for (size_t i = 0; i < n; ++i)
            s += pieces[rng() % pieces.size()];
        INFO("text " << serialized(s));
        REQUIRE(written(s) == serialized(s));
    }
}

TEST_CASE("agents: an event written without a tree is the text of the same object serialized", "[agents][events]") {
    EventList list;
    json::value raw = json::parse(R"({"a":[1,2.5,null,true],"b":{"c":"d\n"}})");
    EventWriter(list, "tool_call").text("call_id", "c\"1").integer("n", -42).value("raw", raw).end();
    EventWriter(list, "completed").end();
    REQUIRE(list.size() == 2);
    CHECK(list[0] == event({{"kind", "tool_call"}, {"call_id", "c\"1"}, {"n", -42}, {"raw", raw}}));
    CHECK(list[1] == event({{"kind", "completed"}}));
    CHECK(list.strings() == std::vector<std::string>{std::string(list[0]), std::string(list[1])});
    list.clear();
    CHECK(list.empty());
}

TEST_CASE("agents: a flat look at a line holds strings and integers two levels deep, and refuses the rest", "[agents][events]") {
    FlatJson flat;
    REQUIRE(flat.read(R"({"type":"item.completed","item":{"id":"i1","type":"agent_message","text":"café \"q\"\n"},"n":-7})"));
    REQUIRE(flat.text("type"));
    CHECK(*flat.text("type") == "item.completed");
    REQUIRE(flat.text("item.type"));
    CHECK(*flat.text("item.type") == "agent_message");
    REQUIRE(flat.text("item.text"));
    CHECK(*flat.text("item.text") == "café \"q\"\n");
    REQUIRE(flat.integer("n"));
    CHECK(*flat.integer("n") == -7);
    CHECK(flat.text("n") == nullptr);
    CHECK(flat.integer("item.text") == nullptr);
    CHECK_FALSE(flat.has("text"));
    CHECK_FALSE(flat.has("item.missing"));

    // A long string with escapes is unescaped into the reader's buffer; earlier views stay valid.
    std::string long_text(100000, 'x');
    const std::string long_line = R"({"a":"x\ty","o":{"k":")" + long_text + R"(\\"},"b":"\/"})"; // the views point into it
    REQUIRE(flat.read(long_line));
    REQUIRE(flat.text("o.k"));
    CHECK(*flat.text("o.k") == long_text + "\\");
    CHECK(*flat.text("a") == "x\ty");
    CHECK(*flat.text("b") == "/");

    // What a flat look cannot hold: the caller parses a tree.
    for (
        const char *line : {
            R"([1,2])",                            // not an object
            R"("text")",                           // not an object
            R"({"a":[1]})",                        // an array
            R"({"a":{"b":{"c":1}}})",              // three levels
            R"({"a":1.5})",                        // a float
            R"({"a":1e3})",                        // an exponent
            R"({"a":-0})",                         // parsers differ on it
            R"({"a":true})",                       // a bool
            R"({"a":null})",                       // a null
            R"({"item.type":"agent_message"})",    // a key with a dot
            R"({"item":{"type":"x"},"item":"y"})", // one top-level name twice
            R"({"type":"a","type":"b"})",          // the same
            R"({"o":{"k":"a","k":"b"}})",          // one name twice in an object
            R"({"a":18446744073709551615})",       // beyond int64
            R"({"a":1} trailing)",                 // not JSON
            R"({"a":1,})",                         // not JSON
            R"({"a":"\u00e9"})",                   // a \u escape
            R"({"a":"\ud800"})",                   // a lone surrogate
            "{\"a\":\"\xc3\"}",                    // cut UTF-8
            "{\"a\":\"\xed\xa0\x80\"}",            // a surrogate in UTF-8
            "{\"a\":\"\x01\"}",                    // a control byte
            R"({"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"ka":10,"kb":11,"kc":12,"kd":13,"ke":14,"kf":15,"kg":16})", // too many
        }) {
        INFO(line);
        CHECK_FALSE(flat.read(line));
        CHECK_FALSE(flat.has("a"));
    }
    // Refused lines leave nothing behind for the next one.
    REQUIRE(flat.read(R"({"b":"2"})"));
    CHECK_FALSE(flat.has("a"));
    CHECK(*flat.text("b") == "2");
}

TEST_CASE("agents: lines larger than the parser's arena, one after another, keep the parser's memory bounded",
          "[agents][events]") {
    // The line parser is one per thread, for the life of the thread. Each line larger than its
    // 8 KiB arena takes one more block; were the arena only released between lines, that block
    // would double with every such line (a few dozen lines: gigabytes, then bad_alloc).
    CodexEventMapper mapper;
    std::string big(40000, 'x');
    std::string line = R"({"type":"item.completed","item":{"id":"c","type":"command_execution","command":"true",)"
                       R"("aggregated_output":")" +
                       big + R"(","exit_code":0,"status":"completed"}})";
    for (int i = 0; i < 200; ++i) {
        const auto &events = mapper.map_line(line);
        REQUIRE(events.size() == 1);
        REQUIRE(json::parse(events[0]).at("kind") == "tool_call");
    }
}

TEST_CASE("codex: lines read without a tree map exactly as the tree maps them", "[agents][events]") {
    struct Case {
        const char *line;
        std::vector<std::string> events;
    };
    const std::vector<Case> cases = {
        {R"({"type":"item.completed","item":{"id":"i1","type":"agent_message","text":"done \"now\"\n"}})",
         {R"({"kind":"message","text":"done \"now\"\n"})"}},
        // The text absent or another type: as the tree path reads it.
        {R"({"type":"item.completed","item":{"id":"i1","type":"agent_message"}})", {R"({"kind":"message","text":""})"}},
        {R"({"type":"item.completed","item":{"id":"i1","type":"agent_message","text":12}})",
         {R"({"kind":"message","text":"12"})"}},
        {R"({"type":"item.completed","item":{"id":"i1","type":"agent_message","text":null}})",
         {R"({"kind":"message","text":""})"}},
        {R"({"type":"thread.started","thread_id":"t-1"})", {R"({"kind":"session_started","session_id":"t-1"})"}},
        {R"({"type":"thread.started","thread_id":5})", {R"({"kind":"session_started","session_id":"5"})"}},
        {R"({"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":"x","output_tokens":3}})",
         {R"({"kind":"token_usage","input":10,"output":3,"cache_read":0,"reasoning":0})", R"({"kind":"completed"})"}},
        {R"({"type":"turn.completed","usage":7})",
         {R"({"kind":"token_usage","input":0,"output":0,"cache_read":0,"reasoning":0})", R"({"kind":"completed"})"}},
        // Lines that only look like the common ones.
        {R"({"type":"item.updated","item":{"id":"i1","type":"agent_message","text":"partial"}})",
         {R"({"kind":"unknown","event_type":"item.updated","raw":{"type":"item.updated","item":{"id":"i1","type":"agent_message","text":"partial"}}})"}},
        {R"({"type":"item.completed","item.type":"agent_message","item.text":"forged"})",
         {R"({"kind":"unknown","event_type":"item.completed","raw":{"type":"item.completed","item.type":"agent_message","item.text":"forged"}})"}},
        {R"({"type":"item.completed","item":{"type":"agent_message","text":"first"},"item":"second"})",
         {R"({"kind":"unknown","event_type":"item.completed","raw":{"type":"item.completed","item":"second"}})"}},
    };
    for (const auto &c : cases) {
        INFO(c.line);
        CodexEventMapper m;
        CHECK(m.map(c.line) == c.events);
    }
    CodexEventMapper m;
    m.map(R"({"type":"turn.completed","usage":{"input_tokens":1}})");
    CHECK(m.terminal == VIK_SESSION_COMPLETED);
}
