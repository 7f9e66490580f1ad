// A plugin in the host that ignores its timeout (tests/plugins/slow-tracker, its pull sleeping
// `sleep_ms`): while its call is overdue, further calls to it are refused with a message naming
// the stuck call (logged once), and once the call returns the plugin is called again.
#include "plugins/instances.hpp"
#include "plugins/plugin_call.hpp"
#include "plugins/registry.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <thread>

using namespace vik;
using namespace std::chrono_literals;
using vik::test::test_plugin_root;

TEST_CASE("stuck calls: a plugin past its deadline is refused until its call returns", "[plugins]") {
    std::ostringstream text;
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("stuck-call-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(text)));
    auto reg = plugins::load_plugins({test_plugin_root() / "slow"});
    REQUIRE(reg.all_loaded());
    auto made = plugins::TrackerInstance::create(reg.find_tracker("slow"), R"({"sleep_ms": 2500})");
    REQUIRE(made);
    auto &tracker = **made;

    plugins::Result<std::string> first = std::unexpected(plugins::PluginError{});
    std::thread worker([&] { first = tracker.pull(100); }); // sleeps 2.5 s with a 100 ms timeout
    std::this_thread::sleep_for(100ms + plugins::kStallGrace + 300ms);
    auto refused = tracker.pull(100);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().status == VIK_ERROR);
    CHECK_THAT(refused.error().message, Catch::StartsWith("plugin 'slow-tracker' is unhealthy: its tracker.pull has not "
                                                          "returned 1 s after it started with a 100 ms timeout"));
    CHECK_THAT(refused.error().message, Catch::Contains("isolation = \"process\""));
    auto again = tracker.fetch("[]", 100); // every worker call of that plugin, not just the stuck kind
    REQUIRE_FALSE(again);
    CHECK_THAT(again.error().message, Catch::Contains("is unhealthy"));
    worker.join();
    REQUIRE(first); // the late call itself completes; its caller decides what a late answer means
    CHECK(*first == "[]");

    auto healthy = tracker.fetch("[]", 100);
    REQUIRE_FALSE(healthy);
    CHECK(healthy.error().status == VIK_UNSUPPORTED); // reached the plugin again
    spdlog::set_default_logger(previous);
    std::string log = text.str();
    INFO(log);
    size_t reports = 0;
    for (size_t at = log.find("is unhealthy"); at != std::string::npos; at = log.find("is unhealthy", at + 1))
        ++reports;
    CHECK(reports == 1); // reported once, refused twice
    CHECK_THAT(log, Catch::Contains("[plugin slow-tracker] its tracker.pull returned after 2 s (its timeout was 100 ms); "
                                    "calls to it go on"));
}
