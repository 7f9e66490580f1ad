// vik_bench: measures the figures docs/performance.md quotes.
//   template  - renders a realistic prompt (loops, filters, conditionals) and a shell hook
//   events    - agent events per second through the session recorder (JSONL + snapshot, a write per batch)
//   spawn     - start-to-exit latency of `true` through the process service (fork, pipes, reap)
//   intake    - issues per second through the intake JSON rules
//   flood     - a scripted agent printing valid events as fast as it can (`yes`), through the real
//               plugin, the bounded session event queue and a loop recording each event: events/s
//               handled and the process's peak RSS (VmHWM)
#include "orchestrator/issue.hpp"
#include "plugins/instances.hpp"
#include "plugins/registry.hpp"
#include "process/process_service.hpp"
#include "session/session_recorder.hpp"
#include "template/template.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void bench_template() {
    json::object ctx{{"issue", json::object{{"id", "ENG-1234"},
                                            {"title", "Fix the \"login\" redirect; $(not run)"},
                                            {"description", std::string(2000, 'x')},
                                            {"labels", json::array{"bug", "auth", "p1", "frontend"}},
                                            {"stage", "build"}}},
                     {"workflow_dir", "/srv/proj"}};
    vik::tmpl::Template prompt(
        "Issue {{ issue.id }}: {{ issue.title | trim }}\n{% for l in issue.labels %}- {{ l | upper }}\n{% endfor %}"
        "{% if issue.description | length > 100 %}{{ issue.description }}{% else %}short{% endif %}\n"
        "Stage {{ issue.stage }} ({{ issue.labels | join(', ') }})",
        "bench");
    vik::tmpl::Template hook(
        "echo \"{{ issue.title }}\" >> '{{ workflow_dir }}/log' && gh issue edit {{ issue.id }} --add-label {{ issue.stage }}",
        "hook");
    const int n = 20000;
    auto t = Clock::now();
    size_t bytes = 0;
    for (int i = 0; i < n; ++i)
        bytes += vik::tmpl::to_text(prompt.render(ctx)).size();
    double s = seconds_since(t);
    std::printf("template: %d prompt renders in %.3f s = %.0f renders/s (%.1f us each, %zu bytes each)\n", n, s, n / s,
                s / n * 1e6, bytes / n);
    t = Clock::now();
    for (int i = 0; i < n; ++i)
        bytes += vik::tmpl::to_shell(hook.render(ctx)).size();
    s = seconds_since(t);
    std::printf("template: %d shell hook renders (with escaping) in %.3f s = %.0f renders/s\n", n, s, n / s);
}

void bench_events() {
    auto dir = std::filesystem::temp_directory_path() / "vik-bench-events";
    std::filesystem::remove_all(dir);
    vik::session::SessionRecorder rec(dir / "s.jsonl", "sid", "ENG-1", "build");
    std::vector<std::string> events = {
        R"({"kind":"message","text":"I will now run the tests and then fix the failing ones."})",
        R"({"kind":"tool_call","call_id":"c1","name":"command_execution","phase":"request","input":{"command":"make test"}})",
        R"({"kind":"tool_call","call_id":"c1","name":"command_execution","phase":"result","output":{"aggregated_output":"ok","exit_code":0}})",
        R"({"kind":"token_usage","input":1200,"output":340,"cache_read":800})"};
    const int n = 200000;
    auto t = Clock::now();
    for (int i = 0; i < n; ++i) {
        rec.record(events[static_cast<size_t>(i) % events.size()]);
        if (i % 256 == 255) rec.flush(); // as the supervisor does after each batch of events
    }
    rec.flush();
    double s = seconds_since(t);
    auto size = std::filesystem::file_size(dir / "s.jsonl");
    std::printf("events: %d events recorded in %.3f s = %.0f events/s (%.1f MB of JSONL, one write per batch of 256)\n", n, s,
                n / s, size / 1e6);
    std::filesystem::remove_all(dir);
}

void bench_spawn() {
    vik::process::ProcessService svc;
    const int n = 300;
    std::vector<double> lat;
    for (int i = 0; i < n; ++i) {
        vik::process::SpawnSpec spec;
        spec.argv = {"/bin/true"};
        auto t = Clock::now();
        auto h = svc.spawn(spec, {});
        h->wait(10000);
        lat.push_back(seconds_since(t) * 1e3);
    }
    std::sort(lat.begin(), lat.end());
    std::printf("spawn: %d runs of /bin/true, start to reaped exit: median %.2f ms, p95 %.2f ms, max %.2f ms\n", n, lat[n / 2],
                lat[static_cast<size_t>(n * 0.95)], lat.back());
}

void bench_intake() {
    json::array issues;
    for (int i = 0; i < 5000; ++i)
        issues.push_back(json::object{{"id", "ENG-" + std::to_string(i)},
                                      {"title", "issue " + std::to_string(i)},
                                      {"state", "todo"},
                                      {"description", std::string(300, 'd')},
                                      {"labels", json::array{"a", "b"}},
                                      {"priority", i % 4 + 1}});
    std::string text = json::serialize(issues);
    const int rounds = 20;
    auto t = Clock::now();
    size_t count = 0;
    for (int r = 0; r < rounds; ++r)
        count += vik::orchestrator::parse_issues(text)->issues.size();
    double s = seconds_since(t);
    std::printf("intake: %zu issues parsed and checked in %.3f s = %.0f issues/s (%.1f MB of JSON per 5000)\n", count, s,
                count / s, text.size() / 1e6);
}

long vm_hwm_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
}

void bench_flood(const char *self) {
    namespace asio = boost::asio;
    // The plugins sit beside the bench in the build tree (bin/../lib/vik-host/plugins).
    auto plugin_dir =
        std::filesystem::canonical(std::filesystem::path(self).parent_path()) / ".." / "lib" / "vik-host" / "plugins";
    auto reg = vik::plugins::load_plugins({plugin_dir});
    auto plugin = reg.find_runtime("scripted");
    if (!plugin) {
        std::printf("flood: skipped, no scripted-agent plugin in %s\n", plugin_dir.c_str());
        return;
    }
    auto rt = vik::plugins::RuntimeInstance::create(plugin, "{}");
    if (!rt) return;
    auto dir = std::filesystem::temp_directory_path() / "vik-bench-flood";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    vik::session::SessionRecorder rec(dir / "s.jsonl", "sid", "ENG-1", "build");
    asio::io_context io;
    long handled = 0;
    vik::plugins::SessionListener l;
    l.dispatch = [&io](std::function<void()> f) { asio::post(io, std::move(f)); };
    l.on_event = [&](std::string_view event) {
        rec.record(event);
        ++handled;
    };
    l.on_finish = [&](int32_t, std::string) { io.stop(); };
    vik::plugins::SessionStart req;
    req.session_id = "flood";
    req.profile_json =
        R"({"name":"bench","settings":{"command":"exec yes '{\"kind\":\"message\",\"text\":\"flooding the host\"}'"}})";
    req.workdir = dir.string();
    long hwm_before = vm_hwm_kib();
    auto session = rt.value()->start(req, l);
    if (!session) {
        std::printf("flood: cannot start: %s\n", session.error().message.c_str());
        return;
    }
    const double seconds = 5;
    int ticks = 0;
    asio::steady_timer stop(io), tick(io);
    std::function<void()> arm = [&] {
        tick.expires_after(std::chrono::milliseconds(10));
        tick.async_wait([&](const boost::system::error_code &ec) {
            if (!ec) ++ticks, arm();
        });
    };
    arm();
    auto t = Clock::now();
    stop.expires_after(std::chrono::milliseconds(static_cast<int>(seconds * 1000)));
    stop.async_wait([&](const boost::system::error_code &) { (*session)->cancel(); });
    io.run();
    double s = seconds_since(t);
    std::printf("flood: %ld events handled in %.2f s = %.0f events/s; 10 ms loop timer fired %d times (%.0f expected); "
                "peak RSS %ld MiB (%ld MiB before)\n",
                handled, s, handled / s, ticks, s * 100, vm_hwm_kib() / 1024, hwm_before / 1024);
    session->reset();
    std::filesystem::remove_all(dir);
}

} // namespace

int main(int argc, char **argv) {
    std::string which = argc > 1 ? argv[1] : "all";
    if (which == "all" || which == "template") bench_template();
    if (which == "all" || which == "events") bench_events();
    if (which == "all" || which == "intake") bench_intake();
    if (which == "all" || which == "spawn") bench_spawn();
    if (which == "all" || which == "flood") bench_flood(argv[0]);
    return 0;
}
