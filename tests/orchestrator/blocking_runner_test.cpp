// The worker pool under a call that ignores its deadline: the loop is answered at the deadline,
// and a spare worker takes the stuck one's place so that the next job still runs.
#include "orchestrator/blocking_runner.hpp"
#include "orchestrator/scheduler_clock.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <future>
#include <optional>

using namespace vik::orchestrator;
using namespace std::chrono_literals;

TEST_CASE("blocking runner: a job stuck past its deadline is answered as a timeout and a spare worker runs the next",
          "[orchestrator]") {
    boost::asio::io_context io;
    auto clock = make_system_clock();
    std::promise<void> release;
    auto released = release.get_future().share();
    std::optional<StepResult> stuck, next;
    {
        BlockingRunner runner(io, *clock, 1, [] {});
        runner.run(
            50ms,
            [released] {
                released.wait(); // ignores its deadline, as a plugin that ignores its timeout would
                return StepResult{true, "", "late"};
            },
            [&](StepResult r) { stuck = std::move(r); });
        // The only worker is held: without a spare this job would wait and time out at 5 s.
        auto until = [&](const std::function<bool()> &done) {
            auto end = std::chrono::steady_clock::now() + 10s;
            while (!done() && std::chrono::steady_clock::now() < end) {
                io.restart();
                io.run_for(10ms);
            }
            return done();
        };
        REQUIRE(until([&] { return stuck.has_value(); }));
        CHECK_FALSE(stuck->ok);
        CHECK(stuck->error == "no answer within 50 ms");
        CHECK(runner.spares() == 1);
        auto asked = std::chrono::steady_clock::now();
        runner.run(
            5000ms,
            [] {
                return StepResult{true, "", "next"};
            },
            [&](StepResult r) { next = std::move(r); });
        REQUIRE(until([&] { return next.has_value(); }));
        CHECK(next->ok);
        CHECK(next->value == "next");
        CHECK(std::chrono::steady_clock::now() - asked < 4s); // it did not wait for its own deadline
        CHECK(runner.inflight() == 1);                        // the stuck one
        release.set_value();
        REQUIRE(until([&] { return runner.inflight() == 0; }));
        CHECK(stuck->error == "no answer within 50 ms"); // its late answer was dropped
    }                                                    // join: the pool and its spare end
}

TEST_CASE("blocking runner: an answer without a job reaches `done` later, on the loop, and counts as in flight until then",
          "[orchestrator]") {
    boost::asio::io_context io;
    auto clock = make_system_clock();
    int settled = 0;
    std::optional<StepResult> got;
    BlockingRunner runner(io, *clock, 1, [&] { ++settled; });
    runner.answer(StepResult{false, "nothing to run", "v"}, [&](StepResult r) { got = std::move(r); });
    CHECK_FALSE(got.has_value()); // never inside the caller
    CHECK(runner.inflight() == 1);
    io.run_for(1s);
    REQUIRE(got.has_value());
    CHECK_FALSE(got->ok);
    CHECK(got->error == "nothing to run");
    CHECK(got->value == "v");
    CHECK(runner.inflight() == 0);
    CHECK(settled == 1);
}
