#include "orchestrator/orchestrator.hpp"

#include "orchestrator/issue.hpp"
#include "orchestrator/template_context.hpp"
#include "orchestrator/tracker_factory.hpp"
#include "plugins/instances.hpp"
#include "process/process_service.hpp"
#include "process/run_command.hpp"
#include "session/session_recorder.hpp"
#include "template/template.hpp"
#include "util/ids_and_time.hpp"
#include "workspace/workspace.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace vik::orchestrator {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

uint32_t to_ms(double seconds) { return seconds_to_ms(seconds); }

std::string join(const std::vector<std::string> &v, const char *sep = ",") {
    std::string out;
    for (const auto &s : v) out += (out.empty() ? "" : sep) + s;
    return out;
}

// The outcome of a blocking step run on the worker pool.
struct StepResult {
    bool ok = true;
    std::string error;
    std::string value; // e.g. the rendered prompt
};

} // namespace

// One (issue, stage) run from launch to release.
struct StageRun {
    StageRun(asio::io_context &io) : overall(io), stall(io) {}
    std::string issue_id, stage;
    std::string session_id;
    std::unique_ptr<session::SessionRecorder> recorder;
    std::unique_ptr<plugins::AgentSession> session;
    asio::steady_timer overall, stall;
    enum class Cancel { none, shutdown, timeout, stall } cancel = Cancel::none;
    double stall_sec = 0, timeout_sec = 0;
    bool finished = false;
};

// An issue with at least one reserved stage.
struct ActiveIssue {
    Issue issue; // as last seen by intake
    std::string key;
    fs::path workdir;
    bool ready = false;                 // workspace set up
    std::vector<std::string> waiting;   // stages to launch once ready
    std::set<std::string> reserved;     // stages reserved: launching, running or finishing
};

struct Orchestrator::Impl {
    const workflow::Config &cfg;
    const plugins::Registry &registry;
    OrchestratorOptions options;

    asio::io_context io;
    asio::thread_pool pool;
    asio::signal_set signals{io, SIGINT, SIGTERM, SIGHUP};
    asio::steady_timer intake_timer{io};
    asio::steady_timer shutdown_timer{io};

    std::unique_ptr<plugins::TrackerInstance> tracker;
    std::vector<std::unique_ptr<plugins::HooksInstance>> hooks;
    std::map<std::string, std::unique_ptr<plugins::RuntimeInstance>> runtimes; // by runtime name
    std::map<std::string, std::string> profile_json;                           // by agent name

    std::map<std::string, ActiveIssue> active;                                  // by issue id
    std::map<std::pair<std::string, std::string>, std::shared_ptr<StageRun>> runs;
    json::object base;
    int64_t iterations = 0;
    bool stopping = false;      // a signal asked us to stop
    bool intake_done = false;   // max_iterations reached: drain and exit
    int signals_seen = 0;
    size_t inflight = 0;        // blocking jobs on the pool not yet posted back
    int exit_code = 0;

    Impl(const workflow::Config &c, const plugins::Registry &r, OrchestratorOptions o)
        : cfg(c), registry(r), options(std::move(o)), pool(static_cast<size_t>(std::max(1, options.worker_threads))) {}

    // ---- setup ---------------------------------------------------------------------------

    void create_plugins() {
        tracker = create_tracker(cfg, registry);
        for (auto &hp : registry.with_kind(plugins::Kind::hooks)) {
            auto h = plugins::HooksInstance::create(hp, "{}");
            if (!h) throw std::runtime_error("hooks plugin '" + hp->manifest.id + "' refused to start: " + h.error().message);
            hooks.push_back(std::move(*h));
        }
        for (const auto &a : cfg.agents) {
            if (!runtimes.count(a.runtime)) {
                auto rp = registry.find_runtime(a.runtime);
                if (!rp) throw std::runtime_error("no loaded plugin provides runtime '" + a.runtime + "'");
                auto r = plugins::RuntimeInstance::create(rp, "{}");
                if (!r) throw std::runtime_error("runtime plugin '" + rp->manifest.id + "' refused to start: " + r.error().message);
                runtimes[a.runtime] = std::move(*r);
            }
            json::object env;
            for (auto &[k, v] : a.env) env[k] = v;
            profile_json[a.name] = json::serialize(json::object{{"name", a.name},
                                                                {"runtime", a.runtime},
                                                                {"model", a.model},
                                                                {"args", a.args},
                                                                {"command", a.command},
                                                                {"env", env},
                                                                {"settings", a.settings},
                                                                {"workflow_dir", cfg.workflow_dir.string()},
                                                                {"timeout_sec", a.timeout_sec},
                                                                {"stall_timeout_sec", a.stall_timeout_sec}});
        }
    }

    // ---- blocking work on the pool, with a deadline on the loop ------------------------------

    // Runs `job` on the pool; `done` runs on the loop with the result, or with a timeout error
    // when the job has not answered within `limit` (its late answer is then dropped).
    void blocking(std::chrono::milliseconds limit, std::function<StepResult()> job, std::function<void(StepResult)> done) {
        auto settled = std::make_shared<bool>(false);
        auto timer = std::make_shared<asio::steady_timer>(io, limit);
        auto shared_done = std::make_shared<std::function<void(StepResult)>>(std::move(done));
        ++inflight;
        timer->async_wait([this, settled, shared_done, limit](const boost::system::error_code &ec) {
            if (ec || *settled) return;
            *settled = true;
            (*shared_done)(StepResult{false, "no answer within " + std::to_string(limit.count()) + " ms", {}});
        });
        asio::post(pool, [this, job = std::move(job), settled, timer, shared_done]() {
            StepResult r;
            try {
                r = job();
            } catch (const std::exception &e) {
                r = StepResult{false, e.what(), {}};
            }
            asio::post(io, [this, r = std::move(r), settled, timer, shared_done]() {
                --inflight;
                if (!*settled) {
                    *settled = true;
                    timer->cancel();
                    (*shared_done)(r);
                }
                maybe_exit();
            });
        });
    }

    // ---- hooks -----------------------------------------------------------------------------

    // Runs one lifecycle point through every hooks plugin. Worker thread.
    StepResult run_hook(const std::string &name, const char *event, const std::optional<std::string> &script_template,
                        const Issue &issue, const fs::path &workdir, const std::optional<std::string> &stage) {
        json::object ctx = issue_context(base, issue, workdir, stage);
        json::value script = nullptr;
        if (script_template) {
            std::string where = stage ? "issue.stages." + *stage + ".hooks." + name : "issue.hooks." + name;
            try {
                script = json::string(tmpl::render_shell(*script_template, where, ctx));
            } catch (const tmpl::TemplateError &e) {
                return {false, std::string("hook `") + name + "` template failed: " + e.what(), {}};
            }
        }
        if (hooks.empty()) {
            if (script_template) return {false, "hook `" + name + "` is configured but no hooks plugin is loaded", {}};
            return {};
        }
        json::object env;
        for (auto &[k, v] : issue_environment(cfg, issue, workdir, stage, options.plugin_dirs)) env[k] = v;
        json::object context{{"hook", name},       {"script", script}, {"workdir", workdir.string()},
                             {"env", env},         {"issue", ctx.at("issue")},
                             {"stage", stage ? json::value(*stage) : json::value(nullptr)}};
        std::string text = json::serialize(context);
        for (auto &h : hooks) {
            auto r = h->on_event(event, text, to_ms(cfg.hook_timeout_sec));
            if (!r) return {false, r.error().message, {}};
        }
        return {};
    }

    std::chrono::milliseconds hook_limit() const { return std::chrono::milliseconds(to_ms(cfg.hook_timeout_sec) + 10000); }

    // ---- intake ----------------------------------------------------------------------------

    void start_intake() {
        if (stopping || intake_done) return;
        uint32_t timeout = to_ms(cfg.pull_timeout_sec);
        blocking(std::chrono::milliseconds(timeout + 10000),
                 [this, timeout] {
                     auto r = tracker->pull(timeout);
                     if (!r) return StepResult{false, r.error().message, {}};
                     return StepResult{true, {}, std::move(*r)};
                 },
                 [this](StepResult r) { on_pulled(std::move(r)); });
    }

    void on_pulled(StepResult r) {
        ++iterations;
        if (stopping) return;
        if (!r.ok) {
            spdlog::error("intake cycle failed: {} (tracker {})", r.error, tracker->plugin_id());
        } else {
            auto parsed = parse_issues(r.value);
            if (!parsed) {
                spdlog::error("intake cycle failed: {} (tracker {})", parsed.error(), tracker->plugin_id());
            } else {
                for (const auto &w : parsed->warnings) spdlog::warn("{}", w);
                spdlog::info("issues pulled count={} iteration={}", parsed->issues.size(), iterations);
                dispatch(parsed->issues);
            }
        }
        if (cfg.max_iterations && iterations >= *cfg.max_iterations) {
            spdlog::info("max_iterations reached iterations={}; draining running stages", iterations);
            intake_done = true;
            maybe_exit();
            return;
        }
        intake_timer.expires_after(std::chrono::seconds(cfg.idle_sec));
        intake_timer.async_wait([this](const boost::system::error_code &ec) {
            if (!ec) start_intake();
        });
    }

    // ---- dispatch --------------------------------------------------------------------------

    void dispatch(const std::vector<Issue> &issues) {
        for (const auto &issue : issues) {
            auto it = active.find(issue.id);
            std::vector<std::string> matching;
            for (const auto &s : cfg.stages)
                if (s.state == issue.state && (it == active.end() || !it->second.reserved.count(s.name))) matching.push_back(s.name);
            if (matching.empty()) continue;
            if (it == active.end() && active.size() >= static_cast<size_t>(cfg.max_issue_concurrency)) {
                spdlog::debug("capacity reached; issue waits issue_id={} running_issues={}", issue.id, active.size());
                continue;
            }
            bool fresh = it == active.end();
            ActiveIssue &a = active[issue.id];
            a.issue = issue;
            if (fresh) {
                a.key = workspace::safe_key(issue.id);
                a.workdir = cfg.issues_dir() / a.key;
            }
            // Reserve before any asynchronous work, so a repeated intake cannot launch twice.
            for (const auto &s : matching) a.reserved.insert(s);
            spdlog::info("issue ready; launching stages issue_id={} state={} stages={}", issue.id, issue.state, join(matching));
            if (fresh) {
                a.waiting = matching;
                setup_issue(issue.id);
            } else if (!a.ready) {
                a.waiting.insert(a.waiting.end(), matching.begin(), matching.end());
            } else {
                for (const auto &s : matching) launch_stage(issue.id, s);
            }
        }
    }

    void setup_issue(const std::string &id) {
        ActiveIssue &a = active.at(id);
        Issue issue = a.issue;
        std::string key = a.key;
        fs::path workdir = a.workdir;
        blocking(hook_limit(),
                 [this, issue, key, workdir]() -> StepResult {
                     auto created = workspace::ensure_directory(cfg.issues_dir(), key);
                     if (!created) return {false, created.error(), {}};
                     if (!*created) return {};
                     auto hook = run_hook("after_create", VIK_HOOK_AFTER_CREATE, cfg.after_create, issue, workdir, std::nullopt);
                     if (!hook.ok) {
                         // A workspace whose bootstrap failed is removed so the next attempt starts clean.
                         auto removed = workspace::remove_directory(cfg.issues_dir(), key);
                         if (!removed) hook.error += "; also: " + removed.error();
                     }
                     return hook;
                 },
                 [this, id](StepResult r) {
                     auto it = active.find(id);
                     if (it == active.end()) return;
                     if (!r.ok || stopping) {
                         if (!r.ok) spdlog::error("issue setup failed issue_id={}: {}", id, r.error);
                         active.erase(it); // releases every reservation of the issue
                         maybe_exit();
                         return;
                     }
                     it->second.ready = true;
                     auto waiting = std::move(it->second.waiting);
                     it->second.waiting.clear();
                     for (const auto &s : waiting) launch_stage(id, s);
                 });
    }

    const workflow::Stage &stage_named(const std::string &name) const {
        for (const auto &s : cfg.stages)
            if (s.name == name) return s;
        throw std::logic_error("unknown stage " + name);
    }

    std::string read_prompt_source(const workflow::Stage &s) const {
        if (s.prompt) return *s.prompt;
        std::ifstream in(*s.prompt_file, std::ios::binary);
        if (!in) throw tmpl::TemplateError("cannot read prompt_file " + s.prompt_file->string() + " of stage '" + s.name + "'");
        std::ostringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    // Worker thread: renders the prompt and expands `exec(...)` commands written in it.
    std::string render_prompt(const workflow::Stage &s, const Issue &issue, const fs::path &workdir) {
        std::string name = s.prompt_file ? s.prompt_file->string() : "issue.stages." + s.name + ".prompt";
        tmpl::Template t(read_prompt_source(s), name);
        auto segments = t.render(issue_context(base, issue, workdir, s.name));
        std::vector<std::string> env_list;
        for (auto &[k, v] : issue_environment(cfg, issue, workdir, s.name, options.plugin_dirs)) env_list.push_back(k + "=" + v);
        uint32_t timeout = to_ms(cfg.prompt_command_timeout_sec);
        return tmpl::expand_prompt_commands(segments, [&](const std::string &cmd) {
            process::SpawnSpec spec;
            spec.argv = {"sh", "-c", cmd};
            spec.cwd = workdir.string();
            spec.env = env_list;
            auto out = process::run_command(spec, timeout);
            if (out.timed_out)
                throw tmpl::TemplateError("prompt command `" + cmd + "` timed out after " + std::to_string(timeout) + " ms");
            if (out.status.exit_code != 0)
                throw tmpl::TemplateError("prompt command `" + cmd + "` exited with status " + std::to_string(out.status.exit_code) +
                                          ": " + out.err_tail);
            return out.out;
        });
    }

    void launch_stage(const std::string &id, const std::string &stage_name) {
        const ActiveIssue &a = active.at(id);
        Issue issue = a.issue;
        fs::path workdir = a.workdir;
        const workflow::Stage &s = stage_named(stage_name);
        auto limit = std::chrono::milliseconds(2 * to_ms(cfg.hook_timeout_sec) + to_ms(cfg.prompt_command_timeout_sec) * 4 + 20000);
        blocking(limit,
                 [this, issue, workdir, &s]() -> StepResult {
                     auto hook = run_hook("before_run", VIK_HOOK_BEFORE_RUN, s.before_run, issue, workdir, s.name);
                     if (!hook.ok) return {false, "before_run vetoed the stage: " + hook.error, {}};
                     try {
                         return {true, {}, render_prompt(s, issue, workdir)};
                     } catch (const std::exception &e) {
                         return {false, std::string("prompt rendering failed: ") + e.what(), {}};
                     }
                 },
                 [this, id, stage_name](StepResult r) {
                     if (!r.ok || stopping) {
                         if (!r.ok) spdlog::error("stage aborted issue_id={} stage={}: {}", id, stage_name, r.error);
                         release(id, stage_name);
                         return;
                     }
                     start_session(id, stage_name, std::move(r.value));
                 });
    }

    // ---- sessions --------------------------------------------------------------------------

    // Variables holding the tracker's credentials: kept out of agent environments unless the
    // profile passes them explicitly (pass_env). Hooks keep them; they run the team's own scripts.
    std::set<std::string> tracker_secrets(const workflow::AgentProfile &profile) const {
        std::set<std::string> names;
        if (auto *t = cfg.tracker_settings.if_contains("token_env"); t && t->is_string()) names.insert(std::string(t->as_string()));
        if (cfg.tracker_kind == "github") names.insert({"GITHUB_TOKEN", "GH_TOKEN"});
        for (const auto &keep : profile.pass_env) names.erase(keep);
        return names;
    }

    void start_session(const std::string &id, const std::string &stage_name, std::string prompt) {
        ActiveIssue &a = active.at(id);
        const workflow::Stage &s = stage_named(stage_name);
        const workflow::AgentProfile &profile = *cfg.agent(s.agent);
        auto run = std::make_shared<StageRun>(io);
        run->issue_id = id;
        run->stage = stage_name;
        run->session_id = util::uuid_v7();
        run->timeout_sec = profile.timeout_sec;
        run->stall_sec = profile.stall_timeout_sec;
        fs::path file = cfg.sessions_dir() / a.key / (stage_name + "-" + run->session_id + ".jsonl");
        try {
            run->recorder = std::make_unique<session::SessionRecorder>(file, run->session_id, id, stage_name);
        } catch (const std::exception &e) {
            spdlog::error("session not started issue_id={} stage={}: {}", id, stage_name, e.what());
            release(id, stage_name);
            return;
        }
        runs[{id, stage_name}] = run;

        std::weak_ptr<StageRun> weak = run;
        plugins::SessionListener listener;
        listener.on_event = [this, weak](std::string event) {
            asio::post(io, [this, weak, event = std::move(event)] {
                if (auto r = weak.lock()) on_event(*r, event);
            });
        };
        listener.on_finish = [this, weak](int32_t outcome, std::string detail) {
            asio::post(io, [this, weak, outcome, detail = std::move(detail)] {
                if (auto r = weak.lock()) on_finish(r, outcome, detail);
            });
        };
        plugins::SessionStart req;
        req.session_id = run->session_id;
        req.profile_json = profile_json.at(profile.name);
        req.prompt = std::move(prompt);
        req.workdir = a.workdir.string();
        auto secrets = tracker_secrets(profile);
        for (auto &[k, v] : issue_environment(cfg, a.issue, a.workdir, stage_name, options.plugin_dirs))
            if (!secrets.count(k)) req.env.push_back(k + "=" + v);
        for (auto &[k, v] : profile.env) req.env.push_back(k + "=" + v);
        auto started = runtimes.at(profile.runtime)->start(req, std::move(listener));
        if (!started) {
            std::string err = "agent session could not start: " + started.error().message;
            run->recorder->record(json::serialize(json::object{{"kind", "error"}, {"detail", err}}));
            on_finish(run, VIK_SESSION_FAILED, err);
            return;
        }
        run->session = std::move(*started);
        run->recorder->set_running();
        spdlog::info("session started issue_id={} stage={} session_id={} agent={} file={}", id, stage_name, run->session_id,
                     profile.name, file.string());
        if (run->timeout_sec > 0) {
            run->overall.expires_after(std::chrono::milliseconds(to_ms(run->timeout_sec)));
            run->overall.async_wait([this, weak](const boost::system::error_code &ec) {
                auto r = weak.lock();
                if (ec || !r || r->finished) return;
                cancel_run(*r, StageRun::Cancel::timeout);
            });
        }
        arm_stall(run);
    }

    // The stall watchdog: a deadline moved forward by every agent event.
    void arm_stall(const std::shared_ptr<StageRun> &run) {
        if (run->stall_sec <= 0) return;
        run->stall.expires_after(std::chrono::milliseconds(to_ms(run->stall_sec)));
        std::weak_ptr<StageRun> weak = run;
        run->stall.async_wait([this, weak](const boost::system::error_code &ec) {
            auto r = weak.lock();
            if (ec || !r || r->finished) return;
            cancel_run(*r, StageRun::Cancel::stall);
        });
    }

    void cancel_run(StageRun &run, StageRun::Cancel why) {
        if (run.finished || run.cancel != StageRun::Cancel::none) return;
        run.cancel = why;
        if (run.session) run.session->cancel();
    }

    void on_event(StageRun &run, const std::string &event) {
        if (run.finished) return;
        run.recorder->record(event);
        auto it = runs.find({run.issue_id, run.stage});
        if (it != runs.end() && run.cancel == StageRun::Cancel::none) arm_stall(it->second);
    }

    void on_finish(const std::shared_ptr<StageRun> &run, int32_t outcome, const std::string &detail) {
        if (run->finished) return;
        run->finished = true;
        run->overall.cancel();
        run->stall.cancel();
        std::string state = outcome == VIK_SESSION_COMPLETED ? "completed" : outcome == VIK_SESSION_FAILED ? "failed" : "cancelled";
        std::string reason = detail;
        if (run->cancel == StageRun::Cancel::timeout) {
            state = "failed";
            reason = "timed out after " + std::to_string(to_ms(run->timeout_sec)) + "ms";
        } else if (run->cancel == StageRun::Cancel::stall) {
            state = "failed";
            reason = "stalled for " + std::to_string(to_ms(run->stall_sec)) + "ms without agent activity";
        } else if (run->cancel == StageRun::Cancel::shutdown && state != "completed") {
            state = "cancelled";
            reason = "cancelled: vik-host is stopping";
        }
        if (state == "failed" && run->cancel != StageRun::Cancel::none)
            run->recorder->record(json::serialize(json::object{{"kind", "error"}, {"detail", reason}}));
        run->recorder->finish(state, reason);
        const auto &snap = run->recorder->snapshot();
        const auto &tokens = snap.at("tokens").as_object();
        auto level = state == "completed" ? spdlog::level::info : state == "cancelled" ? spdlog::level::warn : spdlog::level::err;
        spdlog::log(level, "session finished issue_id={} stage={} session_id={} state={} input_tokens={} output_tokens={}{}",
                    run->issue_id, run->stage, run->session_id, state, json::serialize(tokens.at("input")),
                    json::serialize(tokens.at("output")), reason.empty() ? "" : " error=" + reason);
        run->session.reset(); // the plugin releases its session now that finish was delivered
        std::string id = run->issue_id, stage = run->stage;
        if (state == "cancelled") {
            release(id, stage); // vik: no after_run for a cancelled session
            return;
        }
        auto a = active.find(id);
        if (a == active.end()) {
            release(id, stage);
            return;
        }
        Issue issue = a->second.issue;
        fs::path workdir = a->second.workdir;
        const workflow::Stage &s = stage_named(stage);
        blocking(hook_limit(),
                 [this, issue, workdir, &s]() { return run_hook("after_run", VIK_HOOK_AFTER_RUN, s.after_run, issue, workdir, s.name); },
                 [this, id, stage](StepResult r) {
                     if (!r.ok) spdlog::error("after_run failed issue_id={} stage={}: {}", id, stage, r.error);
                     release(id, stage);
                 });
    }

    void release(const std::string &id, const std::string &stage) {
        runs.erase({id, stage});
        auto it = active.find(id);
        if (it != active.end()) {
            it->second.reserved.erase(stage);
            if (it->second.reserved.empty()) active.erase(it);
        }
        maybe_exit();
    }

    // ---- stopping --------------------------------------------------------------------------

    void wait_signals() {
        signals.async_wait([this](const boost::system::error_code &ec, int sig) {
            if (ec) return;
            if (sig == SIGHUP) {
                spdlog::info("SIGHUP received and ignored");
                wait_signals();
                return;
            }
            if (++signals_seen == 1) {
                spdlog::info("signal {} received; cancelling intake and sessions", sig);
                begin_stop();
                wait_signals();
                return;
            }
            spdlog::warn("second signal {} received; exiting now", sig);
            process::ProcessService::instance().kill_all(SIGKILL);
            exit_code = 130;
            io.stop();
        });
    }

    void begin_stop() {
        stopping = true;
        intake_timer.cancel();
        for (auto &[key, run] : runs) cancel_run(*run, StageRun::Cancel::shutdown);
        // Hooks and prompt commands in flight belong to the stop too.
        process::ProcessService::instance().kill_all(SIGKILL);
        shutdown_timer.expires_after(std::chrono::seconds(options.shutdown_grace_sec));
        shutdown_timer.async_wait([this](const boost::system::error_code &ec) {
            if (ec) return;
            spdlog::error("stop did not finish within {} s; exiting with {} run(s) left", options.shutdown_grace_sec, runs.size());
            process::ProcessService::instance().kill_all(SIGKILL);
            exit_code = 1;
            io.stop();
        });
        maybe_exit();
    }

    void maybe_exit() {
        if (!(stopping || intake_done)) return;
        if (!runs.empty() || inflight > 0 || !active.empty()) return;
        shutdown_timer.cancel();
        io.stop();
    }

    bool prepared = false;

    // Creates the plugin instances and starts listening for signals; throws naming the plugin
    // that refused to start.
    void prepare() {
        if (prepared) return;
        base = base_context(cfg);
        create_plugins();
        wait_signals();
        prepared = true;
    }

    int run() {
        prepare();
        spdlog::info("starting vik: workflow={} tracker={} stages={} max_issue_concurrency={}", cfg.workflow_path.string(),
                     cfg.tracker_kind, cfg.stages.size(), cfg.max_issue_concurrency);
        asio::post(io, [this] { start_intake(); });
        io.run();
        spdlog::info("vik-host stopped exit_code={}", exit_code);
        return exit_code;
    }

    ~Impl() {
        // Nothing may outlive the loop: sessions and hooks are killed, then workers joined.
        process::ProcessService::instance().kill_all(SIGKILL);
        runs.clear();
        pool.stop();
        pool.join();
    }
};

Orchestrator::Orchestrator(const workflow::Config &config, const plugins::Registry &registry, OrchestratorOptions options)
    : impl_(std::make_unique<Impl>(config, registry, std::move(options))) {}

Orchestrator::~Orchestrator() = default;

void Orchestrator::prepare() { impl_->prepare(); }

int Orchestrator::run() { return impl_->run(); }

bool Orchestrator::has_stuck_work() const { return impl_->inflight > 0; }

} // namespace vik::orchestrator
