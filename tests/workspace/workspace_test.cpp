// Issue ids can never name a path outside the workspace root.
#include "support/test_support.hpp"
#include "workspace/workspace.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace vik::workspace;
namespace fs = std::filesystem;

TEST_CASE("workspace: ordinary ids keep vik's layout, others get a sanitized key with a hash", "[workspace][security]") {
    CHECK(safe_key("ENG-42") == "ENG-42");
    CHECK(safe_key("123") == "123");
    CHECK(safe_key("v1.2_x") == "v1.2_x");
    for (std::string id : std::vector<std::string>{"..", ".", "a/b", "/etc/passwd", "../../x", ".hidden", "a b", std::string("nul\0x", 5), "é"}) {
        INFO(id);
        std::string key = safe_key(id);
        CHECK(key.find('/') == std::string::npos);
        CHECK(key[0] != '.');
        CHECK(key.size() > 18);
        CHECK(key.substr(key.size() - 18, 2) == "--");
    }
    CHECK(safe_key("a/b") != safe_key("a_b"));
    CHECK(safe_key("a/b") != safe_key("a:b"));
}

TEST_CASE("workspace: containment rejects escapes, the root and symlinks out", "[workspace][security]") {
    vik::test::TempDir dir;
    fs::path root = dir / "issues";
    fs::create_directories(root);
    CHECK_FALSE(contained_path(root, ".."));
    CHECK_FALSE(contained_path(root, "."));
    CHECK_FALSE(contained_path(root, "a/b"));
    CHECK_FALSE(contained_path(root, ""));
    fs::create_directories(dir / "outside");
    fs::create_directory_symlink(dir / "outside", root / "evil");
    auto evil = contained_path(root, "evil");
    REQUIRE_FALSE(evil);
    CHECK_THAT(evil.error(), Catch::Contains("symlink that escapes"));
    CHECK_FALSE(remove_directory(root, "evil"));
    CHECK(fs::exists(dir / "outside")); // nothing outside was touched
    auto ok = contained_path(root, "ENG-1");
    REQUIRE(ok);
    CHECK(*ok == fs::canonical(root) / "ENG-1");
}

TEST_CASE("workspace: ensure_directory reports creation once and refuses non-directories", "[workspace]") {
    vik::test::TempDir dir;
    fs::path root = dir / "issues";
    auto first = ensure_directory(root, "A");
    REQUIRE(first);
    CHECK(*first);
    auto second = ensure_directory(root, "A");
    REQUIRE(second);
    CHECK_FALSE(*second);
    vik::test::write_file(root / "F", "x");
    auto file = ensure_directory(root, "F");
    REQUIRE_FALSE(file);
    CHECK_THAT(file.error(), Catch::Contains("is not a directory"));
    REQUIRE(remove_directory(root, "A"));
    CHECK_FALSE(fs::exists(root / "A"));
}
