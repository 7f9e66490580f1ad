// vik::sdk::FlatJson (vik/flat_json.hpp) against boost::json: what it accepts is read as a JSON
// parser reads it (the oracle of fuzz/flat_json.cpp), and it does accept the flat lines it is
// for, so that giving up is not how it stays correct.
#include "../../fuzz/flat_json_oracle.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

using vik::sdk::FlatJson;
namespace json = boost::json;

namespace {

bool boost_reads(std::string_view line) {
    boost::system::error_code ec;
    json::value v = json::parse(json::string_view(line.data(), line.size()), ec);
    return !ec && v.is_object();
}

// A flat line of the shape FlatJson is for, written with the escapes it reads, beside the tree
// it stands for.
struct Generated {
    std::string line;
    json::object tree;
};

class Generator {
  public:
    explicit Generator(uint32_t seed) : rng_(seed) {}

    Generated line() {
        Generated g;
        size_t budget = FlatJson::kMaxMembers;
        g.line = object(g.tree, 1, budget);
        return g;
    }

  private:
    size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

    // Text with plain runs, the escapes FlatJson reads, and UTF-8 of every length.
    std::pair<std::string, std::string> text() {
        static const std::vector<std::pair<std::string, std::string>> pieces = {{"plain words ", "plain words "},
                                                                                {"\\\"", "\""},
                                                                                {"\\\\", "\\"},
                                                                                {"\\/", "/"},
                                                                                {"\\n", "\n"},
                                                                                {"\\t", "\t"},
                                                                                {"\\r", "\r"},
                                                                                {"\\b", "\b"},
                                                                                {"\\f", "\f"},
                                                                                {"é", "é"},
                                                                                {"—", "—"},
                                                                                {"😀", "😀"},
                                                                                {"\x7f", "\x7f"},
                                                                                {"12345678", "12345678"},
                                                                                {"", ""}};
        std::string written, meant;
        for (size_t n = pick(6); n > 0; --n) {
            const auto &p = pieces[pick(pieces.size())];
            written += p.first;
            meant += p.second;
        }
        return {written, meant};
    }

    std::string object(json::object &tree, int depth, size_t &budget) {
        std::string out = "{";
        size_t n = std::min(budget, pick(6));
        for (size_t i = 0; i < n && budget > 0; ++i) {
            std::string key = "k" + std::to_string(i) + (pick(3) == 0 ? "_é" : "");
            --budget;
            if (i > 0) out += pick(2) ? "," : " ,\t";
            out += "\"" + key + "\"" + (pick(2) ? ":" : " : ");
            switch (pick(depth == 1 ? 3 : 2)) {
            case 0: {
                auto [written, meant] = text();
                out += "\"" + written + "\"";
                tree[key] = meant;
                break;
            }
            case 1: {
                static const int64_t numbers[] = {0, 7, -7, 999999999999999999, -999999999999999999, 1200};
                int64_t v = numbers[pick(std::size(numbers))];
                out += std::to_string(v);
                tree[key] = v;
                break;
            }
            default: {
                json::object inner;
                out += object(inner, depth + 1, budget);
                tree[key] = std::move(inner);
            }
            }
        }
        return out + "}";
    }

    std::mt19937 rng_;
};

} // namespace

TEST_CASE("sdk: FlatJson reads generated flat lines as boost::json does", "[sdk][flat_json]") {
    FlatJson flat;
    Generator gen(20261207);
    for (int i = 0; i < 3000; ++i) {
        Generated g = gen.line();
        INFO(g.line);
        REQUIRE(flat.read(g.line));
        CHECK(json::value(vik::fuzz::flat_json_tree(flat, -1)) == json::value(g.tree));
        CHECK(vik::fuzz::flat_json_disagreement(flat, g.line).empty());
        CHECK(json::parse(g.line) == json::value(g.tree)); // the generator itself is right
    }
}

TEST_CASE("sdk: FlatJson never accepts what boost::json reads otherwise, line by broken line", "[sdk][flat_json]") {
    // Every line cut short, and every byte of it replaced by bytes that matter to JSON.
    FlatJson flat;
    Generator gen(7);
    const std::string swaps = std::string("\"\\{}[],:0-.e \t\n\x01\x7f", 18) + "\x80\xbf\xc0\xc3\xe0\xed\xf0\xf4\xf5\xff";
    size_t accepted = 0, checked = 0;
    for (int i = 0; i < 60; ++i) {
        std::string line = gen.line().line;
        for (size_t cut = 0; cut <= line.size(); ++cut) {
            std::string s = line.substr(0, cut);
            INFO(s);
            CHECK(vik::fuzz::flat_json_disagreement(flat, s).empty());
            ++checked;
        }
        for (size_t at = 0; at < line.size(); ++at) {
            for (char c : swaps) {
                std::string s = line;
                s[at] = c;
                INFO(s);
                CHECK(vik::fuzz::flat_json_disagreement(flat, s).empty());
                accepted += flat.read(s);
                ++checked;
            }
        }
    }
    CHECK(accepted > checked / 20); // many swaps keep the line flat JSON (a digit, a space in a text)
}

TEST_CASE("sdk: FlatJson checks UTF-8 in strings exactly as boost::json does", "[sdk][flat_json]") {
    FlatJson flat;
    auto agree = [&](const std::string &bytes) {
        std::string line = "{\"a\":\"" + bytes + "\"}";
        bool boost_ok = boost_reads(line);
        INFO(line);
        // Nothing else in these lines makes it give up: it accepts exactly what boost::json does.
        CHECK(flat.read(line) == boost_ok);
        CHECK(vik::fuzz::flat_json_disagreement(flat, line).empty());
    };
    // Every two-byte sequence from a non-ASCII lead byte.
    for (int a = 0x80; a <= 0xFF; ++a)
        for (int b = 0x20; b <= 0xFF; ++b)
            if (b != '"' && b != '\\') agree({char(a), char(b)});
    // Three and four bytes, with the continuation bytes at the edges of every range.
    const int edges[] = {0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    for (int a = 0xC0; a <= 0xFF; ++a)
        for (int b : edges)
            for (int c : edges) {
                agree({char(a), char(b), char(c)});
                for (int d : edges)
                    agree({char(a), char(b), char(c), char(d)});
            }
}

TEST_CASE("sdk: FlatJson numbers, whitespace and keys at their edges", "[sdk][flat_json]") {
    FlatJson flat;
    for (const char *line : {"{}", " {} ", "\t{\r\n}\n", R"({"":""})", R"({"a":0})", R"({"a":-1})", R"({"a":123456789012345678})",
                             R"({"a":-123456789012345678})", R"({"a" : "b" , "c" : {}})", R"({"o":{"a":1},"p":{"a":2}})"}) {
        INFO(line);
        CHECK(flat.read(line));
        CHECK(vik::fuzz::flat_json_disagreement(flat, line).empty());
    }
    for (const char *line : {"",
                             " ",
                             "{",
                             "}",
                             "{\"a\"}",
                             "{\"a\":}",
                             "{\"a\":01}",
                             "{\"a\":1.}",
                             "{\"a\":+1}",
                             "{\"a\":--1}",
                             "{\"a\":1234567890123456789}",
                             "{\"a\":1}{}",
                             "{\"a\":\"b}",
                             "{\"a\":\"\\x\"}",
                             "{'a':1}",
                             "{a:1}",
                             "{\"a\":1 2}",
                             "\xef\xbb\xbf{}",
                             "{\"a\":\"\t\"}",
                             "{\"a\":\"\\\"}"}) {
        INFO(line);
        CHECK_FALSE(flat.read(line));
    }
    // Members found by path; a path into a string or a missing object finds nothing.
    REQUIRE(flat.read(R"({"a":"x","o":{"a":"y","n":3}})"));
    CHECK(*flat.text("a") == "x");
    CHECK(*flat.text("o.a") == "y");
    CHECK(*flat.integer("o.n") == 3);
    CHECK(flat.find("a.a") == nullptr);
    CHECK(flat.find("p.a") == nullptr);
    CHECK(flat.find("n") == nullptr);
    CHECK(flat.find("o")->type == FlatJson::Type::object);

    // A copy starts empty: its views could point into the other object's buffer.
    REQUIRE(flat.read(R"({"a":"x\ny"})"));
    FlatJson copy = flat;
    CHECK(copy.size() == 0);
    CHECK(copy.find("a") == nullptr);
    CHECK(*flat.text("a") == "x\ny");
}
