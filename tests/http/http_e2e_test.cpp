// The HTTP surface of the real vik-host binary: a workflow run with --port 0 (a free port, read
// back from state.json), a scripted agent that stays busy, and clients on 127.0.0.1.
#include "e2e/e2e_support.hpp"
#include "http/http_test_support.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <unistd.h>

using namespace vik::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// idle_sec is an hour: after the first pull, only a refresh makes the host pull again.
std::string busy_workflow(const Project &p) {
    return "agents:\n  bot:\n    runtime: scripted\n    model: none\n    settings: {command: " + (p.dir / "agent.sh").string() +
           "}\nissues:\n  pull:\n    command: cat issues.json\n    idle_sec: 3600\n"
           "issue:\n  stages:\n    work: {when: {state: todo}, agent: bot, prompt: p}\n";
}

uint16_t served_port(const Project &p) {
    uint16_t port = 0;
    wait_until(
        [&] {
            std::error_code ec;
            auto file = p.scoped() / "service" / "state.json";
            if (!fs::exists(file, ec)) return false;
            try {
                port = static_cast<uint16_t>(json::parse(read_file(file)).at("port").to_number<int64_t>());
            } catch (const std::exception &) {
                return false; // being replaced
            }
            return port != 0;
        },
        20s);
    return port;
}

json::object state_of(uint16_t port) {
    auto r = http_request(port, "GET", "/api/v1/state");
    REQUIRE(r.status == 200);
    return json::parse(r.body).as_object();
}

} // namespace

TEST_CASE("http e2e: the host serves its state, pulls at once on POST refresh, streams changes, cancels, and /metrics "
          "passes promtool",
          "[http][e2e]") {
    Project p;
    std::string marker = "vik-http-e2e-" + std::to_string(::getpid());
    p.agent("agent.sh", "#!/bin/sh\ncat >/dev/null\necho '{\"kind\":\"message\",\"text\":\"busy\"}'\nexec sh -c 'sleep 300; : " +
                            marker + "'\n");
    p.issues(R"([{"id":"H-1","title":"an issue with a / in its id's neighbour","state":"todo"}])");
    write_file(p.workflow(), busy_workflow(p));
    auto host = start_host({"run", "--port", "0", p.workflow().string()}, p.dir.path);
    uint16_t port = served_port(p);
    INFO(host->stdout_text());
    REQUIRE(port != 0);

    // A running session, as the API shows it.
    REQUIRE(wait_until([&] { return state_of(port).at("running").as_array().size() == 1; }, 20s));
    auto state = state_of(port);
    auto running = state.at("running").as_array()[0].as_object();
    CHECK(running.at("issue_id") == "H-1");
    CHECK(running.at("stage") == "work");
    CHECK(state.at("totals").at("intake_cycles") == 1);
    auto issue = http_request(port, "GET", "/api/v1/H-1");
    CHECK(issue.status == 200);
    CHECK(json::parse(issue.body).at("running").as_array().size() == 1);

    // The stream, then a refresh: the intake it causes arrives as a change (idle_sec is an hour).
    Client events(port);
    REQUIRE(events.send("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    REQUIRE(events.read_until("event: state\n", 10s).find("event: state\n") != std::string::npos);
    auto refresh = http_request(port, "POST", "/api/v1/refresh");
    CHECK(refresh.status == 202);
    CHECK(events.read_until("event: intake\n", 10s).find("event: intake\n") != std::string::npos);
    CHECK(wait_until([&] { return state_of(port).at("totals").at("intake_cycles") == 2; }, 5s));

    // The command line through the same API: status shows the live table, refresh pulls.
    auto status = run_host({"status", p.workflow().string()}, p.dir.path, {}, 30);
    CHECK(status.exit_code == 0);
    CHECK_THAT(status.out, Catch::Contains("dashboard: http://127.0.0.1:" + std::to_string(port) + "/\n") &&
                               Catch::Contains("running: 1 of 10\n") && Catch::Contains("  H-1    work   bot"));
    auto refreshed = run_host({"refresh", p.workflow().string()}, p.dir.path, {}, 30);
    CHECK(refreshed.exit_code == 0);
    CHECK(refreshed.out == "intake requested\n");
    CHECK(events.read_until("event: intake\n", 10s).find("event: intake\n") != std::string::npos);
    CHECK(wait_until([&] { return state_of(port).at("totals").at("intake_cycles") == 3; }, 5s));

    // /metrics in the exposition format, checked by Prometheus' own tool where it is installed.
    auto metrics = http_request(port, "GET", "/metrics");
    CHECK(metrics.status == 200);
    CHECK(metrics.body.find("vik_sessions_running{agent=\"bot\"} 1\n") != std::string::npos);
    CHECK(metrics.body.find("vik_intake_cycles_total 3\n") != std::string::npos);
    CHECK(metrics.body.find("# TYPE vik_intake_duration_seconds histogram\n") != std::string::npos);
    CHECK(metrics.body.find("vik_intake_duration_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
    CHECK(metrics.body.find("vik_intake_duration_seconds_count 3\n") != std::string::npos);
    if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
        write_file(p.dir / "metrics.txt", metrics.body);
        CHECK(std::system(("promtool check metrics < " + (p.dir / "metrics.txt").string()).c_str()) == 0);
    } else {
        WARN("promtool not installed (Debian package prometheus): /metrics checked by the assertions above only");
    }

    // Cancel from the API: the session ends, the stream says so, the agent is gone.
    auto cancel = http_request(port, "POST", "/api/v1/issues/H-1/cancel");
    CHECK(cancel.status == 200);
    CHECK(json::parse(cancel.body).at("affected").to_number<int64_t>() >= 1);
    CHECK(events.read_until("event: session_ended\n", 10s).find("event: session_ended\n") != std::string::npos);
    CHECK(wait_until([&] { return !process_with_marker_alive(marker); }, 10s));
    // The durable store's record of that run, through the API.
    CHECK(wait_until(
        [&] {
            auto h = http_request(port, "GET", "/api/v1/history?issue=H-1");
            return h.status == 200 && json::parse(h.body).as_array().size() == 1 &&
                   json::parse(h.body).as_array()[0].at("outcome") == "cancelled";
        },
        10s));

    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
    CHECK(events.wait_closed(5s));
}

TEST_CASE("http e2e: listening beyond loopback without a token refuses to start and says why", "[http][e2e]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    p.issues("[]");
    write_file(p.workflow(), busy_workflow(p));
    auto r = run_host({"run", "--port", "0", "--bind-address", "0.0.0.0", p.workflow().string()}, p.dir.path, {}, 30);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("run refused: refusing to listen on 0.0.0.0:0 without a bearer token"));
    CHECK_FALSE(fs::exists(p.scoped() / "service" / "state.json"));

    // With the token named and set, the same address is served, and the API wants the token.
    write_file(p.workflow(), busy_workflow(p) + "server:\n  token_env: VIK_TEST_HTTP_TOKEN\n");
    auto missing = run_host({"run", "--port", "0", "--bind-address", "0.0.0.0", p.workflow().string()}, p.dir.path, {}, 30);
    CHECK(missing.exit_code == 1);
    CHECK_THAT(missing.err, Catch::Contains("server.token_env names VIK_TEST_HTTP_TOKEN, which is not set"));
}

TEST_CASE("http e2e: refresh without a running host, or a host without HTTP, says why", "[http][e2e]") {
    Project p;
    p.agent("agent.sh", kOkAgent);
    p.issues("[]");
    write_file(p.workflow(), busy_workflow(p));
    auto none = run_host({"refresh", p.workflow().string()}, p.dir.path, {}, 30);
    CHECK(none.exit_code == 1);
    CHECK_THAT(none.err, Catch::Contains("refresh failed: no vik-host runs this workflow"));
    auto host = start_host({"run", p.workflow().string()}, p.dir.path);
    REQUIRE(wait_until([&] { return host->stdout_text().find("starting vik") != std::string::npos; }, 20s));
    auto no_http = run_host({"refresh", p.workflow().string()}, p.dir.path, {}, 30);
    CHECK(no_http.exit_code == 1);
    CHECK_THAT(no_http.err, Catch::Contains("serves no HTTP API; start it with --port N or server.port"));
    auto status = run_host({"status", p.workflow().string()}, p.dir.path, {}, 30);
    CHECK_THAT(status.out, Catch::Contains("live: not served"));
    host->signal(SIGTERM);
    CHECK(host->wait(20s) == 0);
}
