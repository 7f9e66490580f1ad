#include "orchestrator/stage_launcher.hpp"

#include "orchestrator/template_context.hpp"
#include "security/secret_environment.hpp"
#include "template/template.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

namespace vik::orchestrator {

namespace json = boost::json;
namespace fs = std::filesystem;

StageLauncher::StageLauncher(const LiveConfig &config, const workspace::Layout &layout,
                             std::vector<std::unique_ptr<plugins::HooksInstance>> hooks, BlockingRunner &runner,
                             CallBudgets budgets, process::CommandRunner commands, std::string plugin_dirs)
    : cfg_(config), layout_(layout), hooks_(std::move(hooks)), runner_(runner), budgets_(budgets), commands_(std::move(commands)),
      plugin_dirs_(std::move(plugin_dirs)), base_(base_context(config.get())),
      every_point_(std::any_of(hooks_.begin(), hooks_.end(), [](const auto &h) { return !h->scripted_only(); })) {}

// Runs one lifecycle point through every hooks plugin. Worker thread.
StepResult StageLauncher::run_hook(const std::string &name, const char *event, const std::optional<std::string> &script_template,
                                   const Issue &issue, const fs::path &workdir, const std::optional<std::string> &stage,
                                   const json::object *outcome) const {
    if (!runs_point(script_template)) return {};
    json::object ctx = issue_context(base_, issue, workdir, stage);
    if (outcome) ctx["outcome"] = *outcome;
    json::value script = nullptr;
    if (script_template) {
        std::string where = stage && !outcome ? "issue.stages." + *stage + ".hooks." + name : "issue.hooks." + name;
        try {
            script = json::string(tmpl::render_shell(*script_template, where, ctx));
        } catch (const tmpl::TemplateError &e) {
            return {false, std::string("hook `") + name + "` template failed: " + e.what(), {}};
        }
    }
    if (hooks_.empty()) {
        if (script_template) return {false, "hook `" + name + "` is configured but no hooks plugin is loaded", {}};
        return {};
    }
    json::object env;
    for (auto &[k, v] : issue_environment(cfg_.get(), issue, workdir, stage, plugin_dirs_))
        env[k] = v;
    if (outcome) {
        env["VIK_OUTCOME"] = outcome->at("kind");
        env["VIK_OUTCOME_REASON"] = json::string(env_value(std::string(outcome->at("reason").as_string())));
    }
    json::object context{
        {"hook", name}, {"script", script},         {"workdir", workdir.string()},
        {"env", env},   {"issue", ctx.at("issue")}, {"stage", stage ? json::value(*stage) : json::value(nullptr)}};
    if (outcome) context["outcome"] = *outcome;
    std::string text = json::serialize(context);
    for (auto &h : hooks_) {
        auto r = h->on_event(event, text, static_cast<uint32_t>(budgets_.hook.count()));
        if (!r) return {false, r.error().message, {}};
    }
    return {};
}

void StageLauncher::setup_workspace(const Issue &issue, std::function<void(StepResult)> done) {
    runner_.run(
        budgets_.hook_deadline(),
        [this, issue]() -> StepResult {
            bool bootstrap = runs_point(cfg_->after_create);
            auto prepared = layout_.prepare(issue.id, bootstrap ? workspace::Bootstrap::marked : workspace::Bootstrap::none);
            if (!prepared) return {false, prepared.error(), {}};
            StepResult ok{true, {}, prepared->path.string()};
            if (prepared->what == workspace::Prepared::existing) return ok;
            if (prepared->what == workspace::Prepared::rebuilt)
                spdlog::warn("workspace was left half-made (its after_create never finished); rebuilt issue_id={}", issue.id);
            if (!bootstrap) return ok; // nothing to run: ready as made
            auto hook = run_hook("after_create", VIK_HOOK_AFTER_CREATE, cfg_->after_create, issue, prepared->path, std::nullopt);
            if (hook.ok) {
                // Only now does the workspace count as ready.
                auto ready = layout_.mark_ready(issue.id);
                if (ready) return ok;
                hook = {false, ready.error(), {}};
            }
            // A workspace whose bootstrap failed is removed so the next attempt starts clean.
            auto removed = layout_.remove(issue.id);
            if (!removed) hook.error += "; also: " + removed.error();
            return hook;
        },
        std::move(done));
}

namespace {

std::string read_prompt_source(const workflow::Stage &s) {
    if (s.prompt) return *s.prompt;
    std::ifstream in(*s.prompt_file, std::ios::binary);
    if (!in) throw tmpl::TemplateError("cannot read prompt_file " + s.prompt_file->string() + " of stage '" + s.name + "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

// Worker thread: renders the prompt and expands `exec(...)` commands written in it.
std::string StageLauncher::render_prompt(const workflow::Stage &s, const Issue &issue, const fs::path &workdir,
                                         const json::object &run_info) const {
    // A run that continues a conversation is told only why it runs again (the conversation holds
    // the task): the stage's resume_prompt, or the built-in one.
    const json::value *resumed = run_info.if_contains("resumed");
    bool resuming = resumed && resumed->is_bool() && resumed->get_bool();
    std::string name = resuming        ? "issue.stages." + s.name + ".resume_prompt"
                       : s.prompt_file ? s.prompt_file->string()
                                       : "issue.stages." + s.name + ".prompt";
    return render_text(resuming ? s.resume_prompt.value_or(workflow::kDefaultResumePrompt) : read_prompt_source(s), name, s,
                       issue, workdir, run_info);
}

std::string StageLauncher::render_text(const std::string &source, const std::string &name, const workflow::Stage &s,
                                       const Issue &issue, const fs::path &workdir, const json::object &run_info) const {
    tmpl::Template t(source, name);
    json::object ctx = issue_context(base_, issue, workdir, s.name);
    for (const auto &kv : run_info)
        ctx[kv.key()] = kv.value();
    auto segments = t.render(ctx);
    std::vector<std::string> env_list;
    for (auto &[k, v] : issue_environment(cfg_.get(), issue, workdir, s.name, plugin_dirs_))
        env_list.push_back(k + "=" + v);
    auto timeout = static_cast<uint32_t>(budgets_.prompt_command.count());
    return tmpl::expand_prompt_commands(segments, [&](const std::string &cmd) {
        process::SpawnSpec spec;
        spec.argv = {"sh", "-c", cmd};
        spec.cwd = workdir.string();
        spec.env = env_list;
        auto out = commands_(spec, timeout);
        if (out.timed_out)
            throw tmpl::TemplateError("prompt command `" + cmd + "` timed out after " + std::to_string(timeout) + " ms");
        if (out.status.exit_code != 0)
            throw tmpl::TemplateError("prompt command `" + cmd + "` exited with status " + std::to_string(out.status.exit_code) +
                                      ": " + out.err_tail);
        return out.out;
    });
}

void StageLauncher::prepare_stage(const Issue &issue, const fs::path &workdir, const workflow::Stage &stage,
                                  json::object run_info, std::function<void(StepResult)> done) {
    runner_.run(
        budgets_.launch_deadline(),
        [this, issue, workdir, &stage, run_info = std::move(run_info)]() -> StepResult {
            auto hook = run_hook("before_run", VIK_HOOK_BEFORE_RUN, stage.before_run, issue, workdir, stage.name);
            if (!hook.ok) return {false, "before_run vetoed the stage: " + hook.error, {}};
            try {
                return {true, {}, render_prompt(stage, issue, workdir, run_info)};
            } catch (const std::exception &e) {
                return {false, std::string("prompt rendering failed: ") + e.what(), {}};
            }
        },
        std::move(done));
}

void StageLauncher::prepare_review(const Issue &issue, const fs::path &workdir, const workflow::Stage &stage,
                                   json::object run_info, std::function<void(StepResult)> done) {
    runner_.run(
        budgets_.launch_deadline(),
        [this, issue, workdir, &stage, run_info = std::move(run_info)]() -> StepResult {
            try {
                return {true,
                        {},
                        render_text(stage.gate.prompt.value_or(""), "issue.stages." + stage.name + ".gate.prompt", stage, issue,
                                    workdir, run_info)};
            } catch (const std::exception &e) {
                return {false, std::string("review prompt rendering failed: ") + e.what(), {}};
            }
        },
        std::move(done));
}

StageLauncher::GateCommand StageLauncher::gate_command(const Issue &issue, const fs::path &workdir, const workflow::Stage &stage,
                                                       const json::object &outcomes) const {
    GateCommand g;
    json::object ctx = issue_context(base_, issue, workdir, stage.name);
    ctx["outcomes"] = outcomes;
    g.script = tmpl::render_shell(stage.gate.command.value_or(""), "issue.stages." + stage.name + ".gate.command", ctx);
    std::map<std::string, std::string> env;
    for (auto &[k, v] : security::full_environment())
        env[k] = v;
    for (auto &[k, v] : issue_environment(cfg_.get(), issue, workdir, stage.name, plugin_dirs_))
        env[k] = v;
    for (auto &[k, v] : env)
        g.env.push_back(k + "=" + v);
    return g;
}

void StageLauncher::after_run(const Issue &issue, const fs::path &workdir, const workflow::Stage &stage,
                              std::function<void(StepResult)> done) {
    if (!runs_point(stage.after_run)) return runner_.answer(StepResult{}, std::move(done)); // nothing to run
    runner_.run(
        budgets_.hook_deadline(),
        [this, issue, workdir, &stage] {
            return run_hook("after_run", VIK_HOOK_AFTER_RUN, stage.after_run, issue, workdir, stage.name);
        },
        std::move(done));
}

void StageLauncher::on_outcome(const Issue &issue, const fs::path &workdir, const std::string &stage, const std::string &kind,
                               const std::string &reason, std::function<void(StepResult)> done) {
    const std::optional<std::string> &script = kind == "completed" ? cfg_->on_completed
                                               : kind == "failed"  ? cfg_->on_failed
                                                                   : cfg_->on_blocked;
    if (!runs_point(script)) return done(StepResult{}); // nobody listens
    runner_.run(
        budgets_.hook_deadline(),
        [this, issue, workdir, stage, kind, reason, &script]() -> StepResult {
            json::object outcome{{"kind", kind}, {"reason", reason}};
            return run_hook("on_" + kind, VIK_HOOK_ON_OUTCOME, script, issue, workdir, stage, &outcome);
        },
        std::move(done));
}

void StageLauncher::remove_workspace(const Issue &issue, std::function<void(StepResult)> done) {
    runner_.run(
        budgets_.hook_deadline(),
        [this, issue]() -> StepResult {
            auto workdir = layout_.workspace(issue.id);
            if (!workdir) return StepResult{false, workdir.error(), {}};
            auto hook = run_hook("before_remove", VIK_HOOK_BEFORE_REMOVE, cfg_->before_remove, issue, *workdir, std::nullopt);
            if (!hook.ok) spdlog::error("before_remove failed issue_id={}: {}", issue.id, hook.error);
            auto removed = layout_.remove(issue.id);
            if (!removed) return StepResult{false, removed.error(), {}};
            return StepResult{};
        },
        std::move(done));
}

} // namespace vik::orchestrator
