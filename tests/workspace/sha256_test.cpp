// The host's SHA-256 (the hash part of workspace keys): FIPS 180-4's examples, every length
// around the padding boundaries, and a differential run against coreutils' sha256sum.
#include "support/test_support.hpp"
#include "util/sha256.hpp"
#include "workspace/workspace.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <random>
#include <sstream>

using vik::util::sha256_hex;
namespace fs = std::filesystem;

TEST_CASE("sha256: the standard's examples", "[workspace][sha256]") {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    CHECK(sha256_hex("abc", 16) == "ba7816bf8f01cfea");
    CHECK(sha256_hex("abc", 100).size() == 64);
}

TEST_CASE("sha256: agrees with sha256sum on every length around the block boundaries and on random bytes",
          "[workspace][sha256]") {
    vik::test::TempDir dir;
    std::mt19937 rng(20261208);
    std::map<std::string, std::string> inputs; // file name -> content
    for (size_t len = 0; len <= 200; ++len) {  // 55/56 and 119/120 change the number of padded blocks
        std::string s(len, '\0');
        for (auto &c : s)
            c = static_cast<char>(rng());
        inputs["len" + std::to_string(len)] = s;
    }
    for (int i = 0; i < 20; ++i) {
        std::string s(rng() % 5000, '\0');
        for (auto &c : s)
            c = static_cast<char>(rng());
        inputs["rand" + std::to_string(i)] = s;
    }
    std::string command = "cd " + dir.path.string() + " && sha256sum";
    for (const auto &[name, content] : inputs) {
        vik::test::write_file(dir / name, content);
        command += " " + name;
    }
    std::string out;
    FILE *pipe = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;)
        out.append(buf, n);
    REQUIRE(::pclose(pipe) == 0);
    size_t checked = 0;
    std::istringstream lines(out);
    for (std::string digest, name; lines >> digest >> name; ++checked) {
        INFO(name);
        CHECK(sha256_hex(inputs.at(name)) == digest);
    }
    CHECK(checked == inputs.size());
}

TEST_CASE("sha256: workspace keys of unsafe ids keep their documented hash part", "[workspace][sha256]") {
    // safe_key appends "--" and the first 16 hex characters of SHA-256(id).
    CHECK(vik::workspace::safe_key("a/b") == "a_b--" + sha256_hex("a/b", 16));
    CHECK(sha256_hex("a/b", 16) == "c14cddc033f64b9d");
}
