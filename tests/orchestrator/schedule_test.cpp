// Schedules (the workflow's `schedules:`; docs/scheduling.md, "Schedules") in-process on a
// manual clock with the file tracker and the SQLite store: a firing sets the standing issue to
// the schedule's state and its stage runs; after downtime `missed: run_once` fires once at start
// and `missed: skip` waits for the next firing; a first start never fires at once.
#include "orchestrator/scheduler_harness.hpp"

#include <catch2/catch.hpp>

using namespace vik::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace chr = std::chrono;

namespace {

chr::system_clock::time_point utc(int y, unsigned m, unsigned d, int hh, int mm) {
    return chr::sys_days(chr::year(y) / m / d) + chr::hours(hh) + chr::minutes(mm);
}

// maintain: logs its prompt and puts the issue back to idle.
std::string agent_script(const Project &p) {
    std::string dir = shell_quote(p.dir.path.string());
    return "#!/bin/sh\n{ cat; echo; } >> " + dir + "/prompts.log\nsed -i 's/\"maintenance\"/\"idle\"/' " + dir +
           "/issues.json\necho '{\"kind\":\"completed\"}'\n";
}

std::string workflow(const Project &p, const std::string &missed) {
    return "agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: " + (p.dir / "agent.sh").string() +
           "}\nissues:\n  tracker: {kind: file, path: issues.json}\n  pull: {idle_sec: 3600}\nissue:\n  stages:\n"
           "    maintain:\n      when: {state: maintenance}\n      agent: bot\n      prompt: 'maintain {{ issue.id }}'\n"
           "schedules:\n  nightly:\n    cron: '0 3 * * *'\n    time_zone: Europe/Berlin\n    issue: M-1\n"
           "    state: maintenance\n    missed: " +
           missed + "\n";
}

size_t runs(const Project &p) {
    fs::path log = p.dir / "prompts.log";
    return fs::exists(log) ? count(read_file(log), "maintain M-1") : 0;
}

} // namespace

TEST_CASE("schedules: a firing moves the standing issue and its stage runs, and after downtime run_once catches up once",
          "[scheduling][schedules][store]") {
    auto project = std::make_shared<Project>();
    Project &p = *project;
    p.agent("agent.sh", agent_script(p));
    p.issues(R"([{"id":"M-1","title":"nightly upkeep","state":"idle"}])");
    chr::system_clock::time_point died_at;
    {
        auto db = open_store(p);
        SchedulerHarness h(project);
        // 01:58 UTC is 02:58 in Berlin (winter): the firing is two minutes away.
        h.clock = std::make_shared<vik::orchestrator::ManualClock>(utc(2026, 12, 7, 1, 58));
        h.start(workflow(p, "run_once"), db.get());
        REQUIRE(h.wait_intakes(1));
        h.settle();
        CHECK(runs(p) == 0); // a first start waits for the next firing
        CHECK_THAT(h.log(),
                   Catch::Contains("schedule armed schedule=nightly next=2026-12-07T02:00:00.000Z time_zone=Europe/Berlin"));
        h.advance(60s);
        CHECK(runs(p) == 0);
        h.advance(60s);
        REQUIRE(h.run_until([&] {
            return runs(p) == 1 && h.log().find("session finished issue_id=M-1") != std::string::npos && h.view().running.empty();
        }));
        CHECK_THAT(h.log(), Catch::Contains("schedule fired schedule=nightly due=2026-12-07T02:00:00.000Z issue_id=M-1 "
                                            "state=maintenance"));
        bool announced = false;
        for (const auto &c : h.changes)
            if (c.kind == "scheduled" && c.issue_id == "M-1" && c.data.at("schedule") == "nightly") announced = true;
        CHECK(announced);
        CHECK_THAT(h.log(), Catch::Contains("schedule armed schedule=nightly next=2026-12-08T02:00:00.000Z"));
        h.settle();
        died_at = h.clock->wall_now();
        h.crash();
    }
    // Down for two nights: run_once fires once at start, then waits for the next night.
    auto db = open_store(p);
    SchedulerHarness second(project);
    second.clock = std::make_shared<vik::orchestrator::ManualClock>(died_at + 2 * 24h + 3h);
    second.start(workflow(p, "run_once"), db.get());
    REQUIRE(second.run_until([&] { return runs(p) == 2 && first_issue_state(p) == "idle"; }));
    // The newest missed firing stands for both.
    CHECK_THAT(second.log(), Catch::Contains("schedule missed a firing while vik-host was down schedule=nightly "
                                             "due=2026-12-09T02:00:00.000Z; running it once now (missed: run_once)"));
    CHECK_THAT(second.log(), Catch::Contains("schedule armed schedule=nightly next=2026-12-10T02:00:00.000Z"));
    REQUIRE(second.run_until([&] { return second.view().running.empty(); }));
    second.settle();
    CHECK(runs(p) == 2);
    auto again_at = second.clock->wall_now() + 1h;
    second.crash();
    REQUIRE(db->flush(5s).has_value()); // what the host queued is on disk, as its writer commits it within milliseconds
    // A quick second restart finds nothing missed.
    SchedulerHarness third(project);
    third.clock = std::make_shared<vik::orchestrator::ManualClock>(again_at);
    third.start(workflow(p, "run_once"), db.get());
    REQUIRE(third.wait_intakes(1));
    third.settle();
    CHECK(runs(p) == 2);
    CHECK(third.log().find("schedule missed") == std::string::npos);
}

TEST_CASE("schedules: after downtime missed: skip waits for the next firing", "[scheduling][schedules][store]") {
    auto project = std::make_shared<Project>();
    Project &p = *project;
    p.agent("agent.sh", agent_script(p));
    p.issues(R"([{"id":"M-1","title":"nightly upkeep","state":"idle"}])");
    {
        auto db = open_store(p);
        SchedulerHarness h(project);
        h.clock = std::make_shared<vik::orchestrator::ManualClock>(utc(2026, 12, 7, 1, 59));
        h.start(workflow(p, "skip"), db.get());
        REQUIRE(h.wait_intakes(1));
        h.advance(60s);
        REQUIRE(h.run_until([&] {
            return runs(p) == 1 && h.log().find("session finished issue_id=M-1") != std::string::npos && h.view().running.empty();
        }));
        h.settle();
        h.crash();
    }
    auto db = open_store(p);
    SchedulerHarness second(project);
    second.clock = std::make_shared<vik::orchestrator::ManualClock>(utc(2026, 12, 8, 12, 0));
    second.start(workflow(p, "skip"), db.get());
    REQUIRE(second.wait_intakes(1));
    second.settle();
    CHECK(runs(p) == 1);
    CHECK_THAT(second.log(), Catch::Contains("schedule missed a firing while vik-host was down schedule=nightly "
                                             "due=2026-12-08T02:00:00.000Z; skipped (missed: skip)"));
    CHECK_THAT(second.log(), Catch::Contains("schedule armed schedule=nightly next=2026-12-09T02:00:00.000Z"));
}
