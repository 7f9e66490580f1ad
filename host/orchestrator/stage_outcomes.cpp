#include "orchestrator/stage_outcomes.hpp"

#include "template/template.hpp"

#include <boost/json.hpp>

#include <fstream>
#include <system_error>

namespace vik::orchestrator {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// The outcome file's path when it stays inside the workspace once links are followed.
std::expected<fs::path, std::string> contained(const fs::path &workdir, const workflow::OutcomeSpec &spec) {
    std::error_code ec;
    fs::path root = fs::canonical(workdir, ec);
    if (ec) return std::unexpected("the workspace " + workdir.string() + " cannot be resolved: " + ec.message());
    fs::path file = fs::weakly_canonical(root / spec.file, ec);
    if (ec) return std::unexpected("'" + spec.file + "' cannot be resolved: " + ec.message());
    fs::path rel = file.lexically_relative(root);
    if (rel.empty() || *rel.begin() == "..")
        return std::unexpected("'" + spec.file + "' leads out of the workspace (a symbolic link?); it is not read");
    return file;
}

bool has_type(const json::value &v, const std::string &type) {
    if (type == "string") return v.is_string();
    if (type == "boolean") return v.is_bool();
    if (type == "integer")
        return v.is_int64() || v.is_uint64() ||
               (v.is_double() && v.get_double() == static_cast<double>(static_cast<int64_t>(v.get_double())));
    if (type == "number") return v.is_number();
    if (type == "array") return v.is_array();
    if (type == "object") return v.is_object();
    return false;
}

const char *type_of(const json::value &v) {
    switch (v.kind()) {
    case json::kind::null:
        return "null";
    case json::kind::bool_:
        return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
        return "integer";
    case json::kind::double_:
        return "number";
    case json::kind::string:
        return "string";
    case json::kind::array:
        return "array";
    case json::kind::object:
        return "object";
    }
    return "value";
}

} // namespace

std::expected<json::object, std::string> read_outcome(const fs::path &workdir, const workflow::OutcomeSpec &spec) {
    auto file = contained(workdir, spec);
    if (!file) return std::unexpected(file.error());
    std::error_code ec;
    if (!fs::exists(*file, ec))
        return std::unexpected("the agent wrote no outcome file '" + spec.file + "' (the stage's outcome.file)");
    if (!fs::is_regular_file(*file, ec)) return std::unexpected("'" + spec.file + "' is not a regular file");
    std::ifstream in(*file, std::ios::binary);
    if (!in) return std::unexpected("'" + spec.file + "' cannot be read");
    std::string text(workflow::kMaxOutcomeBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > workflow::kMaxOutcomeBytes)
        return std::unexpected("'" + spec.file + "' is larger than " + std::to_string(workflow::kMaxOutcomeBytes / 1024) +
                               " KiB");
    json::value v = json::parse(text, ec);
    if (ec) return std::unexpected("'" + spec.file + "' is not valid JSON: " + ec.message());
    if (!v.is_object()) return std::unexpected("'" + spec.file + "' holds a JSON " + type_of(v) + ", not an object");
    json::object &o = v.as_object();
    for (const auto &[name, type] : spec.fields) {
        const json::value *f = o.if_contains(name);
        if (!f) return std::unexpected("'" + spec.file + "' has no field '" + name + "' (" + type + ")");
        if (!has_type(*f, type))
            return std::unexpected("'" + spec.file + "' field '" + name + "' is a " + type_of(*f) + ", expected " + type);
    }
    return std::move(o);
}

std::expected<void, std::string> clear_outcome(const fs::path &workdir, const workflow::OutcomeSpec &spec) {
    auto file = contained(workdir, spec);
    if (!file) return std::unexpected(file.error());
    std::error_code ec;
    fs::remove(*file, ec);
    if (ec) return std::unexpected("'" + spec.file + "' cannot be removed: " + ec.message());
    return {};
}

std::expected<bool, std::string> outcome_succeeded(const workflow::OutcomeSpec &spec, const std::string &stage_name,
                                                   const json::object &outcome) {
    if (!spec.succeed_if) return true;
    try {
        std::string r =
            tmpl::render_text(workflow::condition_template(*spec.succeed_if),
                              "issue.stages." + stage_name + ".outcome.succeed_if", json::object{{"outcome", outcome}});
        return r == "1";
    } catch (const std::exception &e) {
        return std::unexpected(std::string("succeed_if cannot be evaluated: ") + e.what());
    }
}

void StageOutcomes::record(const std::string &issue_id, const std::string &stage, json::object outcome,
                           std::chrono::system_clock::time_point at) {
    if (store_) store_->record_outcome(store::OutcomeRecord{issue_id, stage, json::serialize(outcome), at});
    by_issue_[issue_id][stage] = std::move(outcome);
}

json::object StageOutcomes::of(const std::string &issue_id) const {
    auto it = by_issue_.find(issue_id);
    return it == by_issue_.end() ? json::object{} : it->second;
}

void StageOutcomes::forget(const std::string &issue_id) {
    if (by_issue_.erase(issue_id) && store_) store_->forget_outcomes(issue_id);
}

void StageOutcomes::restore(const std::vector<store::OutcomeRecord> &records) {
    for (const auto &r : records) {
        std::error_code ec;
        json::value v = json::parse(r.json, ec);
        if (!ec && v.is_object()) by_issue_[r.issue_id][r.stage] = std::move(v.as_object());
    }
}

} // namespace vik::orchestrator
