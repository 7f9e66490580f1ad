// Agent output backpressure where events cross into the host (plugins/instances.cpp): with a
// dispatching listener, a session's agent is read only as fast as the loop handles its events,
// nothing is dropped, finish comes last, and the loop's timers keep firing during a flood.
#include "plugins/host_api.hpp"
#include "plugins/instances.hpp"
#include "plugins/registry.hpp"
#include "process/process_service.hpp"
#include "support/test_support.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

using namespace vik;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

std::unique_ptr<plugins::RuntimeInstance> scripted_runtime(plugins::Registry &reg) {
    reg = plugins::load_plugins({test::plugin_dir()});
    auto plugin = reg.find_runtime("scripted");
    REQUIRE(plugin);
    auto rt = plugins::RuntimeInstance::create(plugin, "{}");
    REQUIRE(rt);
    return std::move(*rt);
}

plugins::SessionStart flood_request(const std::string &command, const test::TempDir &dir) {
    plugins::SessionStart req;
    req.session_id = "s-1";
    req.profile_json = json::serialize(json::object{{"name", "bot"}, {"settings", json::object{{"command", command}}}});
    req.prompt = "p";
    req.workdir = dir.path.string();
    return req;
}

} // namespace

TEST_CASE("event flow: a flooding agent waits for a slow loop and loses nothing, finish comes last, timers fire",
          "[plugins][flow]") {
    process::ProcessService processes; // outlives the runtime and its sessions
    plugins::ProcessServiceBinding bind(processes);
    plugins::Registry reg;
    auto rt = scripted_runtime(reg);
    test::TempDir dir;
    const long total = 200000;
    std::string marker = "vik-flow-" + std::to_string(::getpid());
    // awk writes all its lines in a fraction of a second when nothing holds it back.
    std::string cmd = "awk -v m=" + marker + " 'BEGIN { for (i = 1; i <= " + std::to_string(total) +
                      "; i++) printf \"{\\\"kind\\\":\\\"message\\\",\\\"text\\\":\\\"%d\\\"}\\n\", i }'";

    asio::io_context io;
    long handled = 0;
    bool in_order = true, finished = false, finish_after_all = false;
    bool slow = true;
    plugins::SessionListener l;
    l.dispatch = [&io](std::function<void()> f) { asio::post(io, std::move(f)); };
    l.on_event = [&](std::string_view event) {
        auto v = json::parse(event).as_object();
        if (v.at("kind").as_string() != "message") return;
        if (std::stol(std::string(v.at("text").as_string())) != handled + 1) in_order = false;
        ++handled;
        if (slow) std::this_thread::sleep_for(50us);
    };
    l.on_finish = [&](int32_t outcome, std::string) {
        finished = true;
        finish_after_all = handled == total && outcome == VIK_SESSION_FAILED; // no `completed` line
        io.stop();
    };
    int ticks = 0;
    asio::steady_timer tick(io);
    std::function<void()> arm = [&] {
        tick.expires_after(10ms);
        tick.async_wait([&](const boost::system::error_code &ec) {
            if (ec) return;
            ++ticks;
            arm();
        });
    };
    arm();
    long handled_at_1s = -1;
    bool agent_blocked_at_1s = false;
    asio::steady_timer check(io), guard(io);
    check.expires_after(1s);
    check.async_wait([&](const boost::system::error_code &) {
        handled_at_1s = handled;
        agent_blocked_at_1s = test::process_with_marker_alive(marker);
        slow = false;
    });
    guard.expires_after(60s);
    guard.async_wait([&](const boost::system::error_code &ec) {
        if (!ec) io.stop();
    });

    auto session = rt->start(flood_request(cmd, dir), l);
    REQUIRE(session);
    io.run();
    tick.cancel();
    INFO("handled after 1 s: " << handled_at_1s << ", ticks: " << ticks);
    // Held back: after 1 s of a slow loop the agent is still alive, blocked on its pipe.
    CHECK(agent_blocked_at_1s);
    CHECK(handled_at_1s < total / 2);
    // The loop was never starved: its 10 ms timer ran all along (about 100 times in the 1st s on
    // an idle machine; a starved loop runs it once or not at all). The bound leaves room for a
    // loaded 2-core CI machine: this is a starvation check, not a latency measurement.
    CHECK(ticks >= 20);
    // And nothing was dropped.
    CHECK(finished);
    CHECK(handled == total);
    CHECK(in_order);
    CHECK(finish_after_all);
    (*session).reset();
}

TEST_CASE("event flow: cancelling a blocked flooding agent ends the session promptly", "[plugins][flow]") {
    process::ProcessService processes; // outlives the runtime and its sessions
    plugins::ProcessServiceBinding bind(processes);
    plugins::Registry reg;
    auto rt = scripted_runtime(reg);
    test::TempDir dir;
    asio::io_context io;
    long handled = 0;
    int32_t outcome = -1;
    plugins::SessionListener l;
    l.dispatch = [&io](std::function<void()> f) { asio::post(io, std::move(f)); };
    l.on_event = [&](std::string_view) {
        ++handled;
        std::this_thread::sleep_for(20us);
    };
    l.on_finish = [&](int32_t o, std::string) {
        outcome = o;
        io.stop();
    };
    auto session = rt->start(flood_request("exec yes '{\"kind\":\"message\",\"text\":\"flood\"}'", dir), l);
    REQUIRE(session);
    asio::steady_timer cancel(io), guard(io);
    auto started = std::chrono::steady_clock::now();
    cancel.expires_after(1s);
    cancel.async_wait([&](const boost::system::error_code &) { (*session)->cancel(); });
    guard.expires_after(30s);
    guard.async_wait([&](const boost::system::error_code &ec) {
        if (!ec) io.stop();
    });
    io.run();
    CHECK(outcome == VIK_SESSION_CANCELLED);
    CHECK(handled > 0);
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    (*session).reset();
}
