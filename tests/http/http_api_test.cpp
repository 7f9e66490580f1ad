// The routes of /api/v1, /metrics and the dashboard, called as plain functions on a fake
// OperatorSurface (no socket): what each answers, with which status and error code.
#include "cli/live_status.hpp"
#include "http/api.hpp"
#include "http/http_test_support.hpp"
#include "http/url.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"
#include "support/pg_server.hpp"
#include "support/test_support.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>

using namespace vik;
namespace json = boost::json;

namespace {

struct Routes {
    test::FakeSurface surface;
    http::HttpStats stats;
    http::Api api{surface, stats};

    Routes() {
        surface.state.workflow = "/w/workflow.yml";
        orchestrator::RunningView r;
        r.issue_id = "A/1 x";
        r.stage = "plan";
        r.agent = "coder";
        r.started_at = "2026-11-23T10:00:00.000Z";
        r.session = json::object{{"last_event_at", "2026-11-23T10:00:05.000Z"}, {"tokens", json::object{{"total", 42}}}};
        surface.state.running.push_back(r);
        surface.state.retrying.push_back({"B-2", "plan", 2, "failure", "2026-11-23T10:05:00.000Z", "exit 1"});
        surface.state.totals.sessions_completed = 3;
        surface.state.totals.tokens_input = 1000;
        surface.issues["A/1 x"] = {"A/1 x", "first", "todo", "", "", {r}, {}, {}, {}};
    }
    http::Response call(const std::string &method, const std::string &target, const std::string &body = "") const {
        return api.handle({method, target, body, "127.0.0.1", "", ""});
    }
    static json::object body(const http::Response &r) { return json::parse(r.body).as_object(); }
};

std::string error_code(const http::Response &r) { return std::string(json::parse(r.body).at("error").at("code").as_string()); }

} // namespace

TEST_CASE("http api: GET /api/v1/state is the scheduler view", "[http]") {
    Routes t;
    auto r = t.call("GET", "/api/v1/state");
    CHECK(r.status == 200);
    CHECK(r.content_type == "application/json");
    auto b = Routes::body(r);
    CHECK(b.at("running").as_array().size() == 1);
    CHECK(b.at("retrying").as_array()[0].at("due_at") == "2026-11-23T10:05:00.000Z");
    CHECK(b.at("totals").at("sessions_completed") == 3);
    CHECK(r.route == "/api/v1/state");
}

TEST_CASE("http api: an issue id is percent-decoded and opaque, by /issues/{id} and Symphony's /api/v1/{id}", "[http]") {
    Routes t;
    const std::string enc = http::percent_encode("A/1 x");
    CHECK(enc == "A%2F1%20x");
    for (const auto &target : {"/api/v1/issues/" + enc, "/api/v1/" + enc}) {
        auto r = t.call("GET", target);
        CHECK(r.status == 200);
        CHECK(Routes::body(r).at("id") == "A/1 x");
    }
    auto missing = t.call("GET", "/api/v1/issues/nope");
    CHECK(missing.status == 404);
    CHECK(error_code(missing) == "unknown_issue");
    CHECK(t.call("GET", "/api/v1/issues/bad%2").status == 400);
    CHECK(t.call("GET", "/api/v1/issues/nul%00").status == 400);
}

TEST_CASE("http api: POST refresh, retry and cancel reach the surface, with 409 when refused", "[http]") {
    Routes t;
    auto r = t.call("POST", "/api/v1/refresh");
    CHECK(r.status == 202);
    CHECK(t.surface.refreshes == 1);
    t.surface.accept_refresh = false;
    auto refused = t.call("POST", "/api/v1/refresh");
    CHECK(refused.status == 409);
    CHECK(error_code(refused) == "not_accepting");

    auto retry = t.call("POST", "/api/v1/issues/A%2F1%20x/retry");
    CHECK(retry.status == 200);
    CHECK(Routes::body(retry).at("affected") == 1);
    auto cancel = t.call("POST", "/api/v1/issues/A%2F1%20x/cancel");
    CHECK(Routes::body(cancel).at("affected") == 2);
    CHECK(t.surface.cancels == 1);
    CHECK(t.call("POST", "/api/v1/issues/unknown/cancel").status == 404);
    t.surface.issues["refuse"] = {};
    auto no = t.call("POST", "/api/v1/issues/refuse/retry");
    CHECK(no.status == 409);
    CHECK(json::parse(no.body).at("error").at("message") == "an agent may only retry its own issue");
}

TEST_CASE("http api: a retry's body carries the operator's message for the next prompt", "[http]") {
    Routes t;
    auto ok = t.call("POST", "/api/v1/issues/A%2F1%20x/retry", R"({"message":"use the staging database"})");
    CHECK(ok.status == 200);
    CHECK(t.surface.last_retry_message() == "use the staging database");
    CHECK(t.call("POST", "/api/v1/issues/A%2F1%20x/retry", " \n").status == 200); // an empty body: no message
    CHECK(t.surface.last_retry_message().empty());
    for (const char *bad : {"use staging", R"(["x"])", R"({"message":5})"}) {
        INFO(bad);
        auto r = t.call("POST", "/api/v1/issues/A%2F1%20x/retry", bad);
        CHECK(r.status == 400);
        CHECK(error_code(r) == "bad_body");
    }
    CHECK(t.surface.retries == 2);
}

TEST_CASE("http api: approve and reject answer a human gate, a rejection's body carries the feedback", "[http]") {
    Routes t;
    auto ok = t.call("POST", "/api/v1/issues/A%2F1%20x/approve");
    CHECK(ok.status == 200);
    CHECK(Routes::body(ok).at("action") == "approve");
    CHECK(Routes::body(ok).at("affected") == 1);
    CHECK(t.surface.approvals == 1);
    auto rejected = t.call("POST", "/api/v1/issues/A%2F1%20x/reject", R"({"feedback":"cover the empty list"})");
    CHECK(rejected.status == 200);
    CHECK(Routes::body(rejected).at("action") == "reject");
    CHECK(t.surface.rejections == 1);
    {
        std::lock_guard lock(t.surface.retry_mutex);
        CHECK(t.surface.last_feedback_ == "cover the empty list");
    }
    for (const char *bad : {"cover it", R"({"feedback":["x"]})"}) {
        INFO(bad);
        auto r = t.call("POST", "/api/v1/issues/A%2F1%20x/reject", bad);
        CHECK(r.status == 400);
        CHECK(json::parse(r.body).at("error").at("message") ==
              "a rejection's body is a JSON object such as {\"feedback\": \"text\"}");
    }
    CHECK(t.call("GET", "/api/v1/issues/A%2F1%20x/approve").status == 405);
    CHECK(t.call("POST", "/api/v1/issues/unknown/approve").status == 404);
    t.surface.issues["refuse"] = {};
    auto none = t.call("POST", "/api/v1/issues/refuse/reject");
    CHECK(none.status == 409);
    CHECK(json::parse(none.body).at("error").at("message") == "issue refuse has no stage awaiting approval");
    CHECK(t.surface.rejections == 2);
}

TEST_CASE("http api: a wrong method is 405 with Allow, an unknown path 404, both as JSON errors", "[http]") {
    Routes t;
    auto r = t.call("GET", "/api/v1/refresh");
    CHECK(r.status == 405);
    CHECK(error_code(r) == "method_not_allowed");
    bool allow = false;
    for (auto &[k, v] : r.headers)
        allow = allow || (k == "Allow" && v == "POST");
    CHECK(allow);
    CHECK(t.call("DELETE", "/api/v1/state").status == 405);
    CHECK(t.call("GET", "/api/v2/state").status == 404);
    CHECK(error_code(t.call("GET", "/nothing")) == "not_found");
    CHECK(t.surface.cancels == 0);
}

TEST_CASE("http api: a session transcript is read only from the files the issue lists, page by page", "[http]") {
    Routes t;
    test::TempDir dir;
    test::write_file(dir / "s1.jsonl", "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    test::write_file(dir / "secret", "nope\n");
    t.surface.issues["A/1 x"].session_files = {(dir / "s1.jsonl").string()};
    auto r = t.call("GET", "/api/v1/issues/A%2F1%20x/sessions/0");
    CHECK(r.status == 200);
    CHECK(r.content_type == "application/x-ndjson");
    CHECK(r.body == "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    // Pages end on whole lines and say where the next starts.
    http::Api small(t.surface, t.stats, http::ApiLimits{12});
    auto p = small.handle({"GET", "/api/v1/issues/A%2F1%20x/sessions/0?offset=8", "", "", "", ""});
    CHECK(p.body == "{\"b\":2}\n");
    CHECK(std::find(p.headers.begin(), p.headers.end(), std::pair<std::string, std::string>("X-Vik-Next-Offset", "16")) !=
          p.headers.end());
    // A number that is not in the list, a path, or a traversal is never a file.
    CHECK(error_code(t.call("GET", "/api/v1/issues/A%2F1%20x/sessions/1")) == "unknown_session");
    CHECK(t.call("GET", "/api/v1/issues/A%2F1%20x/sessions/..%2Fsecret").status == 404);
    CHECK(t.call("GET", "/api/v1/issues/A%2F1%20x/sessions/-1").status == 404);
    auto list = Routes::body(t.call("GET", "/api/v1/issues/A%2F1%20x"));
    CHECK(list.at("sessions").as_array()[0].at("bytes") == 24);
}

TEST_CASE("http api: the event stream route subscribes with session events only when an issue is named", "[http]") {
    Routes t;
    auto r = t.call("GET", "/api/v1/events?issue=A%2F1%20x");
    REQUIRE(r.stream);
    std::vector<std::string> frames;
    auto close = r.stream->open([&](std::string f) { frames.push_back(std::move(f)); });
    REQUIRE(t.surface.listeners.size() == 1);
    CHECK(t.surface.listeners.begin()->second.second);
    CHECK(frames.size() == 2); // state, issue
    t.surface.emit({"session_event", "A/1 x", "plan", "", {{"type", "tool_call"}}});
    CHECK(frames.size() == 3);
    CHECK(frames.back().starts_with("event: session_event\ndata: {"));
    close();
    CHECK(t.surface.listeners.empty());
}

TEST_CASE("http api: the dashboard files are served with a strict content security policy", "[http]") {
    Routes t;
    auto r = t.call("GET", "/");
    CHECK(r.status == 200);
    CHECK(r.content_type.starts_with("text/html"));
    CHECK(r.body.find("<!doctype html>") != std::string::npos);
    bool csp = false;
    for (auto &[k, v] : r.headers)
        csp = csp || (k == "Content-Security-Policy" && v.find("script-src 'self'") != std::string::npos);
    CHECK(csp);
    CHECK(t.call("GET", "/app.js").content_type.starts_with("text/javascript"));
    CHECK(http::Api::is_public_asset("/app.css"));
    CHECK_FALSE(http::Api::is_public_asset("/api/v1/state"));
}

TEST_CASE("http metrics: the exposition passes promtool check metrics", "[http]") {
    Routes t;
    t.stats.requests[{"/api/v1/state", 200}] = 5;
    auto r = t.call("GET", "/metrics");
    CHECK(r.status == 200);
    CHECK(r.content_type.starts_with("text/plain; version=0.0.4"));
    CHECK(r.body.find("vik_sessions_running{agent=\"coder\"} 1\n") != std::string::npos);
    CHECK(r.body.find("vik_sessions_queued 1\n") != std::string::npos);
    CHECK(r.body.find("vik_runs_total{outcome=\"completed\"} 3\n") != std::string::npos);
    CHECK(r.body.find("vik_tokens_total{kind=\"input\"} 1000\n") != std::string::npos);
    CHECK(r.body.find("vik_http_requests_total{route=\"/api/v1/state\",code=\"200\"} 5\n") != std::string::npos);
    if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
        WARN("promtool not installed (Debian package prometheus): the exposition was not checked by it");
        return;
    }
    test::TempDir dir;
    test::write_file(dir / "metrics.txt", r.body);
    auto out = dir / "promtool.out";
    int rc = std::system(("promtool check metrics < " + (dir / "metrics.txt").string() + " > " + out.string() + " 2>&1").c_str());
    INFO(test::read_file(out));
    CHECK(rc == 0);
}

TEST_CASE("http metrics: RFC 3339 times parse to Unix seconds", "[http]") {
    CHECK(http::rfc3339_seconds("1970-01-01T00:00:01.500Z") == 1.5);
    CHECK(http::rfc3339_seconds("2026-11-23T00:00:00.000Z") == 1795392000.0);
    CHECK(http::rfc3339_seconds("yesterday") < 0);
}

TEST_CASE("status: the live table lists running, retrying and blocked work with terminal-safe text", "[http]") {
    auto state = json::parse(R"({"max_issue_concurrency":4,
      "running":[{"issue_id":"A-1\u001b[2J","stage":"plan","agent":"coder","attempt":2,"retry_kind":"continuation",
                  "started_at":"2026-11-23T10:00:00.000Z",
                  "session":{"last_event_at":"2026-11-23T10:04:50.000Z","last_message":"editing","tokens":{"input":10,"output":5}}}],
      "retrying":[{"issue_id":"B-2","stage":"plan","attempt":2,"kind":"failure","due_at":"2026-11-23T10:05:30.000Z","last_error":"exit 1"}],
      "blocked":[],
      "totals":{"sessions_completed":3,"sessions_failed":1,"sessions_cancelled":0,"tokens_input":100,"tokens_output":50,
                "intake_cycles":7,"intake_failures":1}})")
                     .as_object();
    auto now = std::chrono::system_clock::from_time_t(static_cast<time_t>(http::rfc3339_seconds("2026-11-23T10:05:00.000Z")));
    std::string t = cli::render_live_table(state, now);
    CHECK(t.find("running: 1 of 4\n") != std::string::npos);
    CHECK(t.find("\x1b") == std::string::npos);
    CHECK(t.find("2 continuation") != std::string::npos);
    CHECK(t.find("5m0s ago") != std::string::npos);
    CHECK(t.find("10s ago") != std::string::npos);
    CHECK(t.find("15 ") != std::string::npos);
    CHECK(t.find("in 30s") != std::string::npos);
    CHECK(t.find("blocked: 0\n") != std::string::npos);
    CHECK(t.find("totals: 3 completed, 1 failed, 0 cancelled; tokens 100 in, 50 out; 7 pulls (1 failed)\n") != std::string::npos);
}

TEST_CASE("http api: history and stats come from the durable store, off the loop, and /metrics adds per-agent counters",
          "[http]") {
    test::TempDir dir;
    auto db = store::SqliteStore::open(dir / "vik.db");
    REQUIRE(db);
    store::RunRecord run;
    run.run_id = "r-1";
    run.issue_id = "A/1 x";
    run.stage = "plan";
    run.agent = "coder";
    run.started_at = std::chrono::system_clock::now();
    run.ended_at = run.started_at;
    run.outcome = store::RunOutcome::succeeded;
    run.tokens_in = 70;
    run.cost_usd = 0.25;
    (*db)->record_run(run);
    REQUIRE((*db)->flush(std::chrono::seconds(10)));

    test::FakeSurface surface;
    http::HttpStats stats;
    int off = 0;
    // Both sides inline: the test sees the deferred answer at once, and counts the trips.
    http::Api api(surface, stats, {},
                  http::StoreAccess{db->get(),
                                    [&](std::function<void()> f) {
                                        ++off;
                                        f();
                                    },
                                    [](std::function<void()> f) { f(); }});
    auto answer = [&](const std::string &target) {
        auto r = api.handle({"GET", target, "", "127.0.0.1", "", ""});
        if (!r.deferred) return r;
        http::Response got;
        r.deferred([&](http::Response x) { got = std::move(x); });
        return got;
    };
    auto h = answer("/api/v1/history?issue=A%2F1%20x&limit=5");
    CHECK(h.status == 200);
    CHECK(h.route == "/api/v1/history");
    auto runs = json::parse(h.body).as_array();
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].at("outcome") == "succeeded");
    CHECK(json::parse(answer("/api/v1/history?issue=other").body).as_array().empty());
    CHECK(answer("/api/v1/history?limit=0").status == 400);
    auto st = json::parse(answer("/api/v1/stats").body).as_object();
    CHECK(st.at("per_agent").as_array()[0].at("key") == "coder");
    auto m = answer("/metrics");
    CHECK(m.body.find("vik_agent_runs_total{agent=\"coder\",result=\"succeeded\"} 1\n") != std::string::npos);
    CHECK(m.body.find("vik_agent_cost_usd_total{agent=\"coder\"} 0.25\n") != std::string::npos);
    CHECK(off == 4); // the refused limit never left the loop
    // Without a store: 404 for the store's routes, /metrics at once.
    Routes t;
    CHECK(error_code(t.call("GET", "/api/v1/history")) == "no_store");
    CHECK_FALSE(t.call("GET", "/metrics").deferred);
}

TEST_CASE("http api: /api/v1/cluster lists the hosts and leases of a shared workflow, 404 for a host of its own",
          "[http][postgres]") {
    auto inline_access = [](store::Store *s) {
        return http::StoreAccess{s, [](std::function<void()> f) { f(); }, [](std::function<void()> f) { f(); }};
    };
    auto answer = [](http::Api &api, const std::string &target) {
        auto r = api.handle({"GET", target, "", "127.0.0.1", "", ""});
        http::Response got = r;
        if (r.deferred) r.deferred([&](http::Response x) { got = std::move(x); });
        return got;
    };
    test::FakeSurface surface;
    http::HttpStats stats;
    {
        test::TempDir dir;
        auto db = store::SqliteStore::open(dir / "vik.db");
        REQUIRE(db);
        http::Api api(surface, stats, {}, inline_access(db->get()));
        auto r = answer(api, "/api/v1/cluster");
        CHECK(r.status == 404);
        CHECK_THAT(r.body, Catch::Contains("not_clustered"));
    }
    if (auto why = test::PgServer::unavailable()) {
        WARN("skipped the PostgreSQL half: " << *why);
        return;
    }
    test::PgServer pg;
    store::PostgresOptions o;
    o.host_id = "api-host";
    o.address = "machine-1";
    o.lease_ttl = std::chrono::seconds(30);
    auto db = store::PostgresStore::open(pg.conninfo(), "shop", o);
    REQUIRE(db);
    REQUIRE((*db)->recover(std::chrono::system_clock::now()));
    REQUIRE((*db)->acquire({{{"SHOP-1", "build"}, "todo"}}, {})->size() == 1);
    REQUIRE((*db)->renew(2));
    http::Api api(surface, stats, {}, inline_access(db->get()));
    auto r = answer(api, "/api/v1/cluster");
    INFO(r.body);
    REQUIRE(r.status == 200);
    auto view = json::parse(r.body).as_object();
    CHECK(view.at("this_host") == "api-host");
    REQUIRE(view.at("hosts").as_array().size() == 1);
    CHECK(view.at("hosts").as_array()[0].at("address") == "machine-1");
    CHECK(view.at("hosts").as_array()[0].at("running") == 2);
    REQUIRE(view.at("leases").as_array().size() == 1);
    auto lease = view.at("leases").as_array()[0].as_object();
    CHECK(lease.at("issue_id") == "SHOP-1");
    CHECK(lease.at("host_id") == "api-host");
    CHECK(lease.at("expires_in_sec").as_double() > 20);
}

TEST_CASE("http url: percent-encoding round-trips any id, and arbitrary targets never crash the router", "[http]") {
    std::mt19937 rng(15);
    Routes t;
    for (int i = 0; i < 2000; ++i) {
        std::string id(static_cast<size_t>(rng() % 24) + 1, ' ');
        for (char &c : id)
            c = static_cast<char>(1 + rng() % 255); // every byte but NUL
        auto decoded = http::parse_target("/api/v1/issues/" + http::percent_encode(id));
        REQUIRE(decoded);
        REQUIRE(decoded->segments.size() == 4);
        CHECK(decoded->segments[3] == id);
        std::string junk(static_cast<size_t>(rng() % 40), ' ');
        for (char &c : junk)
            c = "/%?&=#aZ09.-+\x01\xff"[rng() % 15];
        auto r = t.api.handle({rng() % 2 ? "GET" : "POST", "/api/v1/" + junk, "", "127.0.0.1", "", ""});
        CHECK(r.status >= 200);
        CHECK(r.status < 500);
    }
}
