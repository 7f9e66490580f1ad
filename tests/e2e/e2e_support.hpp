#pragma once
// A throw-away project for end-to-end runs: a workflow, its issues, agent scripts, and where
// vik-host puts its files.

#include "support/test_support.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace vik::test {

// A workflow in a temp dir whose pull command prints issues.json.
namespace fs = std::filesystem;

struct Project {
    TempDir dir;
    fs::path workflow() const { return dir / "workflow.yml"; }
    fs::path scoped() const {
        std::string key = workflow().string();
        for (char &c : key)
            if (c == '/') c = '-';
        return dir / ".vik" / "workflows" / key;
    }
    fs::path workspace(const std::string &id) const { return scoped() / "issues" / id; }
    fs::path sessions(const std::string &id) const { return scoped() / "sessions" / id; }

    void issues(const std::string &json_text) { write_file(dir / "issues.json", json_text); }
    void agent(const std::string &name, const std::string &script) {
        write_file(dir / name, script);
        fs::permissions(dir / name, fs::perms::owner_all);
    }
    CommandResult run(int timeout_sec = 90) { return run_host({"run", workflow().string()}, dir.path, {}, timeout_sec); }

    std::vector<fs::path> session_files(const std::string &id) const {
        std::vector<fs::path> out;
        std::error_code ec;
        if (!fs::exists(sessions(id), ec)) return out;
        for (auto &e : fs::directory_iterator(sessions(id)))
            out.push_back(e.path());
        std::sort(out.begin(), out.end());
        return out;
    }
    std::vector<boost::json::object> events(const fs::path &file) const {
        std::vector<boost::json::object> out;
        std::string text = read_file(file);
        size_t start = 0, nl;
        while ((nl = text.find('\n', start)) != std::string::npos) {
            out.push_back(boost::json::parse(text.substr(start, nl - start)).as_object());
            start = nl + 1;
        }
        return out;
    }
};

inline std::string workflow_text(const std::string &loop, const std::string &agent_settings, const std::string &stages,
                                 const std::string &hooks = "", const std::string &pull_extra = "") {
    return "loop:\n" + loop + "agents:\n  bot:\n    runtime: scripted\n    model: none\n" + agent_settings +
           "issues:\n  pull:\n    command: cat issues.json\n    idle_sec: 1\n" + pull_extra + "issue:\n" + hooks + "  stages:\n" +
           stages;
}

inline const char *kOkAgent = R"(#!/bin/sh
cat > /dev/null
echo '{"kind":"session_started","session_id":"p-1"}'
echo '{"kind":"message","text":"hi"}'
echo '{"kind":"completed"}'
)";

inline size_t count(const std::string &text, const std::string &needle) {
    size_t n = 0;
    for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
        ++n;
    return n;
}

} // namespace vik::test
