// The real loader against plugins the test tree builds: one good plugin in C, and one of each
// broken kind. Each broken one is refused with its reason while the others load.
#include "plugins/instances.hpp"
#include "plugins/registry.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

using namespace vik;
using vik::test::test_plugin_root;

namespace {
const plugins::PluginRecord *record_for(const plugins::Registry &reg, const std::string &file) {
    for (const auto &r : reg.records)
        if (r.path.filename() == file) return &r;
    return nullptr;
}
} // namespace

TEST_CASE("loader: each broken plugin is refused with its reason, the good one loads", "[plugins]") {
    auto reg = plugins::load_plugins({test_plugin_root() / "mixed"});
    CHECK_FALSE(reg.all_loaded());

    auto *good = record_for(reg, "libvik-good-c-mixed.so");
    REQUIRE(good);
    CHECK(good->loaded);
    CHECK(good->id == "good-c");
    CHECK(good->version == "1.2.3");
    CHECK(good->abi == "1.0");

    auto *wrong = record_for(reg, "libvik-wrong-abi.so");
    REQUIRE(wrong);
    CHECK_FALSE(wrong->loaded);
    CHECK_THAT(wrong->error, Catch::Contains("built for ABI 2.0, this host speaks ABI 1.0"));

    auto *noentry = record_for(reg, "libvik-no-entry.so");
    REQUIRE(noentry);
    CHECK_FALSE(noentry->loaded);
    CHECK_THAT(noentry->error, Catch::Contains("no entry symbol 'vik_plugin_entry'"));

    auto *text = record_for(reg, "libvik-text.so");
    REQUIRE(text);
    CHECK_FALSE(text->loaded);
    CHECK_THAT(text->error, Catch::Contains("not a loadable shared library"));

    auto *mismatch = record_for(reg, "libvik-mismatch.so");
    REQUIRE(mismatch);
    CHECK_FALSE(mismatch->loaded);
    CHECK_THAT(mismatch->error, Catch::Contains("says id 'mismatch' but the library says 'actual-id'"));

    auto *dup = record_for(reg, "libvik-zz-dup.so");
    REQUIRE(dup);
    CHECK_FALSE(dup->loaded);
    CHECK_THAT(dup->error, Catch::Contains("plugin id 'good-c' is already provided by"));

    REQUIRE(reg.plugins.size() == 1);
    CHECK(reg.plugins[0]->manifest.id == "good-c");
    CHECK(reg.find_tracker("c-fixed") != nullptr);
}

TEST_CASE("loader: a plugin written in C serves its tracker through the host", "[plugins]") {
    auto reg = plugins::load_plugins({test_plugin_root() / "good"});
    REQUIRE(reg.all_loaded());
    auto tracker = plugins::TrackerInstance::create(reg.find_tracker("c-fixed"), "{}");
    REQUIRE(tracker);
    auto issues = (*tracker)->pull(1000);
    REQUIRE(issues);
    CHECK(*issues == R"([{"id":"C-1","title":"from a C plugin","state":"todo"}])");
    auto fetched = (*tracker)->fetch("[]", 1000);
    REQUIRE_FALSE(fetched);
    CHECK(fetched.error().status == VIK_UNSUPPORTED);
    CHECK(fetched.error().message == "good-c: fetch is not supported");
}

TEST_CASE("loader: the library stays loaded while an instance created from it lives", "[plugins]") {
    std::unique_ptr<plugins::TrackerInstance> tracker;
    {
        auto reg = plugins::load_plugins({test_plugin_root() / "good"});
        auto made = plugins::TrackerInstance::create(reg.find_tracker("c-fixed"), "{}");
        REQUIRE(made);
        tracker = std::move(*made);
    } // the registry is gone; the instance still holds the library
    auto issues = tracker->pull(1000);
    REQUIRE(issues);
    CHECK(issues->find("C-1") != std::string::npos);
}

TEST_CASE("loader: a missing plugin directory is reported, not fatal", "[plugins]") {
    auto reg = plugins::load_plugins({"/nonexistent/vik-plugins", test_plugin_root() / "good"});
    REQUIRE(reg.records.size() == 2);
    CHECK_THAT(reg.records[0].error, Catch::Contains("does not exist"));
    CHECK(reg.records[1].loaded);
}

TEST_CASE("loader: the shipped plugins declare their kinds, bad settings are refused with a reason", "[plugins]") {
    auto reg = plugins::load_plugins({vik::test::plugin_dir()});
    CHECK(reg.all_loaded());
    for (const char *id : {"codex", "claude-code", "scripted-agent"}) {
        auto p = reg.find_id(id);
        REQUIRE(p);
        CHECK(p->manifest.kinds == std::vector<plugins::Kind>{plugins::Kind::agent_runtime});
    }
    for (const char *id : {"github-tracker", "command-tracker", "file-tracker"}) {
        auto p = reg.find_id(id);
        REQUIRE(p);
        CHECK(p->manifest.kinds == std::vector<plugins::Kind>{plugins::Kind::tracker});
    }
    auto hooks = reg.find_id("shell-hooks");
    REQUIRE(hooks);
    CHECK(hooks->manifest.kinds == std::vector<plugins::Kind>{plugins::Kind::hooks});

    auto tracker = plugins::TrackerInstance::create(reg.find_id("github-tracker"), "{}");
    REQUIRE_FALSE(tracker);
    CHECK(tracker.error().status == VIK_INVALID_ARGUMENT);
    CHECK(tracker.error().message == "github-tracker: 'repos' (a list of owner/name) is required");
    auto command = plugins::TrackerInstance::create(reg.find_id("command-tracker"), "{}");
    REQUIRE_FALSE(command);
    CHECK_THAT(command.error().message, Catch::Contains("setting 'command' (the pull command) is required"));
}
