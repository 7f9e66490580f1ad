// file-tracker: issues kept in local files a person can edit by hand.
//
// `path` names a .json/.yml/.yaml file holding an array of issues (or one issue), or a folder of
// such files. Every pull re-reads the files, so editing a state by hand moves the issue. Writes
// (set_state, comment) rewrite .json files atomically; YAML files are read-only (rewriting would
// lose their comments), and the error says so. `pull_skips_states` leaves issues in those states
// out of a pull while fetch by id still answers them, as a real tracker's query of open issues
// does with closed ones (the host's workspace inventory relies on that difference).
#include "util/yaml_json.hpp"

#include <vik/plugin.hpp>

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

struct Tracker {
    const vik_host_api *host;
    fs::path path;
    std::set<std::string> pull_skips_states;
    std::mutex write_mutex; // serializes read-modify-write of the files
};

bool is_issue_file(const fs::path &p) {
    auto ext = p.extension().string();
    return ext == ".json" || ext == ".yml" || ext == ".yaml";
}

// YAML becomes JSON by the tree's one rule set (util/yaml_json.hpp), except that the fields the
// host requires as strings stay strings (an id of 42 is the string "42" here: a person typed it).
bool keeps_string(const std::string &key) {
    static const std::set<std::string> string_keys = {"id", "identifier", "title", "state", "status", "description", "desc"};
    return string_keys.count(key) > 0;
}

std::string read_text(const fs::path &p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw vik::sdk::Error("file-tracker: cannot read " + p.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

json::value load_file(const fs::path &p) {
    std::string text = read_text(p);
    if (p.extension() == ".json") {
        boost::system::error_code ec;
        json::value v = json::parse(text, ec);
        if (ec) throw vik::sdk::Error("file-tracker: " + p.string() + " is not valid JSON: " + ec.message());
        return v;
    }
    try {
        return vik::util::yaml_to_json(YAML::Load(text), keeps_string);
    } catch (const YAML::Exception &e) {
        throw vik::sdk::Error("file-tracker: " + p.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                              std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
    }
}

std::vector<fs::path> issue_files(const Tracker &t) {
    std::error_code ec;
    if (fs::is_directory(t.path, ec)) {
        std::vector<fs::path> files;
        for (auto &e : fs::directory_iterator(t.path, ec))
            if (e.is_regular_file() && is_issue_file(e.path())) files.push_back(e.path());
        std::sort(files.begin(), files.end());
        return files;
    }
    if (!fs::exists(t.path, ec)) throw vik::sdk::Error("file-tracker: " + t.path.string() + " does not exist");
    return {t.path};
}

json::array all_issues(const Tracker &t) {
    json::array out;
    for (const auto &f : issue_files(t)) {
        json::value v = load_file(f);
        if (v.is_array())
            for (auto &i : v.as_array())
                out.push_back(i);
        else if (v.is_object())
            out.push_back(v);
        else if (!v.is_null())
            throw vik::sdk::Error("file-tracker: " + f.string() + " must hold an issue object or an array of issues");
    }
    return out;
}

std::string issue_id(const json::value &issue) {
    if (!issue.is_object()) return {};
    for (const char *k : {"id", "identifier"})
        if (auto *v = issue.as_object().if_contains(k); v && v->is_string()) return std::string(v->as_string());
    return {};
}

vik_status create(const vik_host_api *host, const char *settings_json, void **out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        json::value s = json::parse(settings_json);
        auto *p = s.as_object().if_contains("path");
        if (p == nullptr || !p->is_string() || p->as_string().empty())
            throw vik::sdk::Error("file-tracker: setting 'path' (a file or folder of issues) is required", VIK_INVALID_ARGUMENT);
        fs::path path(std::string(p->as_string()));
        if (path.is_relative())
            if (auto *dir = s.as_object().if_contains("workflow_dir"); dir && dir->is_string())
                path = fs::path(std::string(dir->as_string())) / path;
        auto t = std::make_unique<Tracker>();
        t->host = host;
        t->path = path.lexically_normal();
        if (auto *skip = s.as_object().if_contains("pull_skips_states"); skip && skip->is_array())
            for (auto &v : skip->as_array())
                if (v.is_string()) t->pull_skips_states.insert(std::string(v.as_string()));
        *out = t.release();
        return VIK_OK;
    });
}

void destroy(void *instance) { delete static_cast<Tracker *>(instance); }

vik_status pull(void *instance, uint32_t, const vik_sink *out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        auto *t = static_cast<Tracker *>(instance);
        std::lock_guard lock(t->write_mutex);
        json::array issues;
        for (auto &i : all_issues(*t)) {
            const json::value *st = i.is_object() ? i.as_object().if_contains("state") : nullptr;
            if (st == nullptr && i.is_object()) st = i.as_object().if_contains("status");
            if (st && st->is_string() && t->pull_skips_states.count(std::string(st->as_string()))) continue;
            issues.push_back(std::move(i));
        }
        std::string note = "pull: " + std::to_string(issues.size()) + " issue(s) from " + t->path.string();
        if (t->host && t->host->log) t->host->log(t->host->host_ctx, VIK_LOG_DEBUG, note.c_str());
        vik::sdk::write(out, json::serialize(issues));
        return VIK_OK;
    });
}

vik_status fetch(void *instance, const char *ids_json, uint32_t, const vik_sink *out, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        auto *t = static_cast<Tracker *>(instance);
        std::set<std::string> ids;
        json::value requested = json::parse(ids_json); // named: a range-for over a temporary's member dangles
        if (!requested.is_array()) throw vik::sdk::Error("fetch: ids must be a JSON array of strings", VIK_INVALID_ARGUMENT);
        for (auto &v : requested.as_array())
            if (v.is_string()) ids.insert(std::string(v.as_string()));
        std::lock_guard lock(t->write_mutex);
        json::array found;
        for (auto &i : all_issues(*t))
            if (ids.count(issue_id(i))) found.push_back(i);
        vik::sdk::write(out, json::serialize(found));
        return VIK_OK;
    });
}

// Finds the issue in the files and applies `change` to it, rewriting its JSON file atomically.
template <class F> void modify_issue(Tracker &t, const std::string &id, F &&change) {
    std::lock_guard lock(t.write_mutex);
    for (const auto &f : issue_files(t)) {
        json::value doc = load_file(f);
        json::value *target = nullptr;
        if (doc.is_array()) {
            for (auto &i : doc.as_array())
                if (issue_id(i) == id) target = &i;
        } else if (issue_id(doc) == id) {
            target = &doc;
        }
        if (target == nullptr) continue;
        if (f.extension() != ".json")
            throw vik::sdk::Error("file-tracker: issue '" + id + "' lives in " + f.string() +
                                      "; only .json files can be changed by vik-host (edit YAML files by hand)",
                                  VIK_UNSUPPORTED);
        change(target->as_object());
        fs::path tmp = f;
        tmp += ".tmp";
        {
            std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
            o << json::serialize(doc) << "\n";
            if (!o) throw vik::sdk::Error("file-tracker: cannot write " + tmp.string());
        }
        fs::rename(tmp, f);
        return;
    }
    throw vik::sdk::Error("file-tracker: no issue with id '" + id + "' in " + t.path.string(), VIK_NOT_FOUND);
}

vik_status set_state(void *instance, const char *id, const char *state, uint32_t, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        modify_issue(*static_cast<Tracker *>(instance), id, [&](json::object &issue) {
            if (issue.contains("status") && !issue.contains("state"))
                issue["status"] = state;
            else
                issue["state"] = state;
        });
        return VIK_OK;
    });
}

vik_status comment(void *instance, const char *id, const char *body, uint32_t, vik_errbuf *err) {
    return vik::sdk::guarded(err, [&] {
        modify_issue(*static_cast<Tracker *>(instance), id, [&](json::object &issue) {
            if (!issue.contains("comments") || !issue["comments"].is_array()) issue["comments"] = json::array();
            issue["comments"].as_array().push_back(json::string(body));
        });
        return VIK_OK;
    });
}

const vik_tracker_v1 tracker = {sizeof(vik_tracker_v1), create, destroy, pull, fetch, set_state, comment};

const void *get_interface(const char *id) { return std::strcmp(id, VIK_TRACKER_V1) == 0 ? &tracker : nullptr; }

} // namespace

VIK_PLUGIN("file-tracker", "0.1.0", "Issues from a local JSON or YAML file, or a folder of them (for demos and tests)",
           get_interface);
