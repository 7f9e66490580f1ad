// Issue ids can never name a path outside the workspace root.
#include "support/test_support.hpp"
#include "workspace/layout.hpp"
#include "workspace/workspace.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace vik::workspace;
namespace fs = std::filesystem;

TEST_CASE("workspace: ordinary ids keep vik's layout, others get a sanitized key with a hash", "[workspace][security]") {
    CHECK(safe_key("ENG-42") == "ENG-42");
    CHECK(safe_key("123") == "123");
    CHECK(safe_key("v1.2_x") == "v1.2_x");
    for (std::string id :
         std::vector<std::string>{"..", ".", "a/b", "/etc/passwd", "../../x", ".hidden", "a b", std::string("nul\0x", 5), "é"}) {
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

TEST_CASE("workspace: ensure_directory creates private workspaces that are ready only once marked", "[workspace]") {
    vik::test::TempDir dir;
    fs::path root = dir / "issues";
    auto first = ensure_directory(root, "A");
    REQUIRE(first);
    CHECK(*first == Prepared::created);
    CHECK((fs::status(root / "A").permissions() & fs::perms::all) == fs::perms::owner_all);
    CHECK(fs::exists(creating_marker(root, "A")));
    CHECK(creating_marker(root, "A") == root / ".creating" / "A"); // beside the workspace, not in it
    CHECK(fs::is_empty(root / "A"));
    // Not marked ready (the host died during after_create): the next claim starts over.
    vik::test::write_file(root / "A" / "half.txt", "x");
    auto again = ensure_directory(root, "A");
    REQUIRE(again);
    CHECK(*again == Prepared::rebuilt);
    CHECK_FALSE(fs::exists(root / "A" / "half.txt"));
    REQUIRE(mark_ready(root, "A"));
    CHECK_FALSE(fs::exists(creating_marker(root, "A")));
    vik::test::write_file(root / "A" / "work.txt", "x");
    auto ready = ensure_directory(root, "A");
    REQUIRE(ready);
    CHECK(*ready == Prepared::existing);
    CHECK(fs::exists(root / "A" / "work.txt"));
    vik::test::write_file(root / "F", "x");
    auto file = ensure_directory(root, "F");
    REQUIRE_FALSE(file);
    CHECK_THAT(file.error(), Catch::Contains("is not a directory"));
    REQUIRE(remove_directory(root, "A"));
    CHECK_FALSE(fs::exists(root / "A"));
}

TEST_CASE("workspace: a workspace without a marker (made by vik) counts as ready", "[workspace]") {
    vik::test::TempDir dir;
    fs::path root = dir / "issues";
    fs::create_directories(root / "OLD-1");
    vik::test::write_file(root / "OLD-1" / "work.txt", "x");
    auto r = ensure_directory(root, "OLD-1");
    REQUIRE(r);
    CHECK(*r == Prepared::existing);
    CHECK(fs::exists(root / "OLD-1" / "work.txt"));
}

TEST_CASE("workspace: removing a half-made workspace removes its marker too", "[workspace]") {
    vik::test::TempDir dir;
    fs::path root = dir / "issues";
    REQUIRE(ensure_directory(root, "B"));
    REQUIRE(remove_directory(root, "B"));
    CHECK_FALSE(fs::exists(root / "B"));
    CHECK_FALSE(fs::exists(creating_marker(root, "B")));
    auto fresh = ensure_directory(root, "B");
    REQUIRE(fresh);
    CHECK(*fresh == Prepared::created);
}

TEST_CASE("workspace: over-long ids get a readable prefix and a hash instead of failing", "[workspace]") {
    std::string base(300, 'x');
    std::string a = base + "-a", b = base + "-b";
    std::string ka = safe_key(a), kb = safe_key(b);
    CHECK(ka.size() == kKeyPrefixLength + 18);
    CHECK(ka.size() <= kMaxKeyLength);
    CHECK(ka.substr(0, kKeyPrefixLength) == base.substr(0, kKeyPrefixLength));
    CHECK(ka.substr(kKeyPrefixLength, 2) == "--");
    CHECK(ka != kb);          // the same prefix, distinct ids: distinct keys
    CHECK(safe_key(a) == ka); // stable
    std::string odd = std::string(200, '/') + "id";
    CHECK(safe_key(odd).size() <= kMaxKeyLength);
    CHECK(safe_key(std::string(kMaxKeyLength, 'y')) == std::string(kMaxKeyLength, 'y')); // at the limit: kept as is
    vik::test::TempDir dir;
    fs::path root = dir / "issues";
    auto made = ensure_directory(root, ka);
    REQUIRE(made);
    CHECK(fs::is_directory(root / ka));
}

TEST_CASE("workspace: without a bootstrap a new workspace is ready at once, and a half-made one is rebuilt ready",
          "[workspace]") {
    vik::test::TempDir dir;
    fs::path root = dir / "issues";
    auto made = ensure_directory(root, "N", Bootstrap::none);
    REQUIRE(made);
    CHECK(*made == Prepared::created);
    CHECK((fs::status(root / "N").permissions() & fs::perms::all) == fs::perms::owner_all);
    CHECK_FALSE(fs::exists(creating_marker(root, "N"))); // nothing to finish: no marker
    vik::test::write_file(root / "N" / "work.txt", "x");
    auto again = ensure_directory(root, "N", Bootstrap::none);
    REQUIRE(again);
    CHECK(*again == Prepared::existing);
    CHECK(fs::exists(root / "N" / "work.txt"));

    // Left half-made by an earlier run that had an after_create: rebuilt, and ready since no
    // bootstrap runs now.
    REQUIRE(ensure_directory(root, "H", Bootstrap::marked));
    vik::test::write_file(root / "H" / "half.txt", "x");
    auto rebuilt = ensure_directory(root, "H", Bootstrap::none);
    REQUIRE(rebuilt);
    CHECK(*rebuilt == Prepared::rebuilt);
    CHECK_FALSE(fs::exists(root / "H" / "half.txt"));
    CHECK_FALSE(fs::exists(creating_marker(root, "H")));
    auto ready = ensure_directory(root, "H", Bootstrap::none);
    REQUIRE(ready);
    CHECK(*ready == Prepared::existing);
}

TEST_CASE("workspace: the check against a resolved root agrees with contained_path on every kind of name and link",
          "[workspace][security]") {
    vik::test::TempDir dir;
    fs::path root = dir / "issues";
    fs::create_directories(root / "real");
    fs::create_directories(dir / "outside");
    vik::test::write_file(root / "file.txt", "x");
    // name -> whether it may be used; every name is also checked by both functions alike.
    std::vector<std::pair<std::string, bool>> cases = {
        {"NEW-1", true},        {"real", true}, {"file.txt", true},                               // a plain name, missing or not
        {"..", false},          {".", false},   {"a/b", false},     {"", false}, {"self", false}, // a link to the root itself
        {"up", false},          // a relative link out: ../outside
        {"abs", false},         // an absolute link out
        {"dangling_out", true}, // a dangling link: nothing to resolve yet (no workspace can be made there, below)
        {"chain_out", false},   // a link to a link that leads out
        {"alias", true},        // a link to a directory inside
        {"dangling_in", true},  // a link to a missing path inside
        {"chain_in", true},     // a link to a link that stays inside
    };
    fs::create_directory_symlink(root, root / "self");
    fs::create_directory_symlink("../outside", root / "up");
    fs::create_directory_symlink(dir / "outside", root / "abs");
    fs::create_symlink(dir / "nowhere" / "x", root / "dangling_out");
    fs::create_symlink("abs", root / "chain_out");
    fs::create_directory_symlink(root / "real", root / "alias");
    fs::create_symlink(root / "not-yet", root / "dangling_in");
    fs::create_symlink("alias", root / "chain_in");
    fs::path canon = fs::weakly_canonical(root);
    for (const auto &[name, allowed] : cases) {
        INFO(name);
        auto old_way = contained_path(root, name);
        auto new_way = contained_path_in(canon, name);
        CHECK(old_way.has_value() == allowed);
        CHECK(new_way.has_value() == allowed);
        if (old_way && new_way) CHECK(*old_way == *new_way);
        if (!allowed && !name.empty() && name.find('/') == std::string::npos && name != "." && name != "..")
            CHECK_THAT(new_way.error(), Catch::Contains("symlink that escapes"));
    }
    // ensure_directory_in refuses a link out too, and a dangling link, and makes nothing outside.
    auto made = ensure_directory_in(root, canon, "abs", Bootstrap::none);
    REQUIRE_FALSE(made);
    CHECK(fs::is_empty(dir / "outside"));
    auto dangling = ensure_directory_in(root, canon, "dangling_out", Bootstrap::marked);
    REQUIRE_FALSE(dangling);
    CHECK_THAT(dangling.error(), Catch::Contains("is not a directory"));
    CHECK_FALSE(fs::exists(dir / "nowhere"));
}

TEST_CASE("workspace layout: prepares under a root made later, and its inventory gives back every id", "[workspace]") {
    vik::test::TempDir dir;
    Layout layout(dir / "scoped" / "issues", dir / "scoped" / "sessions"); // neither exists yet
    auto plain = layout.prepare("ENG-7", Bootstrap::none);
    REQUIRE(plain);
    CHECK(plain->what == Prepared::created);
    CHECK(plain->path == fs::canonical(dir / "scoped" / "issues") / "ENG-7");
    CHECK(*layout.workspace("ENG-7") == plain->path);
    auto odd = layout.prepare("team/x 1", Bootstrap::marked);
    REQUIRE(odd);
    CHECK(odd->path.parent_path() == plain->path.parent_path());
    CHECK(fs::exists(creating_marker(layout.issues_root(), safe_key("team/x 1"))));
    REQUIRE(layout.mark_ready("team/x 1"));
    CHECK_FALSE(fs::exists(creating_marker(layout.issues_root(), safe_key("team/x 1"))));
    // The plain id is its directory's name (no record); the odd one is read from its record.
    CHECK_FALSE(fs::exists(layout.issues_root() / ".ids" / "ENG-7"));
    CHECK(layout.issue_ids() == std::vector<std::string>{"ENG-7", "team/x 1"});
    auto existing = layout.prepare("ENG-7", Bootstrap::marked);
    REQUIRE(existing);
    CHECK(existing->what == Prepared::existing);
    REQUIRE(layout.remove("team/x 1"));
    CHECK(layout.issue_ids() == std::vector<std::string>{"ENG-7"});
}
