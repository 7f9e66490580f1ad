#include "workflow/diagnostics.hpp"

#include <boost/json.hpp>

namespace vik::workflow {

namespace json = boost::json;

size_t Diagnostics::errors() const {
    size_t n = 0;
    for (auto &d : items) n += d.severity == Severity::error;
    return n;
}

size_t Diagnostics::warnings() const { return items.size() - errors(); }

void Diagnostics::unknown_field(const std::string &p) {
    items.push_back({Severity::warning, p, "unknown_field", "", false, "unknown field '" + p + "'"});
}

void Diagnostics::empty_str(const std::string &p) {
    items.push_back({Severity::error, p, "empty_str", "", false, "'" + p + "' cannot be empty string"});
}

void Diagnostics::empty_map(const std::string &p) {
    items.push_back({Severity::error, p, "empty_map", "", false, "'" + p + "' cannot be empty map"});
}

void Diagnostics::non_positive(const std::string &p, long long v) {
    // "great" (sic) is vik's text; scripts match on it.
    items.push_back({Severity::error, p, "non_positive_number", std::to_string(v), true,
                     "'" + p + "' expected to be great than 0, got " + std::to_string(v)});
}

void Diagnostics::unknown_agent(const std::string &p, const std::string &agent) {
    items.push_back({Severity::error, p, "unknown_agent", agent, false,
                     "agent profile '" + agent + "' set for '" + p + "' is not defined in agents configuration section"});
}

void Diagnostics::unknown_plugin_name(const std::string &p, const std::string &code, const std::string &what,
                                      const std::string &name, const std::vector<std::string> &available) {
    std::string list;
    for (auto &a : available) list += (list.empty() ? "" : ", ") + a;
    if (list.empty()) list = "none; check --plugins";
    items.push_back({Severity::error, p, code, name, false,
                     what + " '" + name + "' set for '" + p + "' is not provided by any loaded plugin (available: " + list + ")"});
}

void Diagnostics::invalid_template(const std::string &p, const std::string &at, const std::string &what) {
    items.push_back({Severity::error, p, "invalid_template", at, false,
                     "'" + p + "' is not a valid template: " + at + ": " + what + " (fix the template syntax)"});
}

void Diagnostics::unsafe_shell_template(const std::string &p, const std::string &at, const std::string &what) {
    items.push_back({Severity::error, p, "unsafe_shell_template", at, false,
                     "'" + p + "' substitutes a value where the shell cannot be kept from running it: " + at + ": " + what});
}

void Diagnostics::unreadable_prompt_file(const std::string &p, const std::string &path, const std::string &why) {
    items.push_back({Severity::error, p, "unreadable_prompt_file", path, false,
                     "prompt file '" + path + "' set for '" + p + "' cannot be read: " + why});
}

std::string render_text(const Diagnostics &d) {
    std::string out;
    for (auto sev : {Severity::error, Severity::warning})
        for (auto &i : d.items)
            if (i.severity == sev) out += (sev == Severity::error ? "[error] " : "[warning] ") + i.message + "\n";
    out += "Vik doctor shows " + std::to_string(d.errors()) + " error(s), " + std::to_string(d.warnings()) + " warning(s)\n";
    return out;
}

std::string render_json(const Diagnostics &d) {
    json::object root;
    json::array errors, warnings;
    for (auto &i : d.items) {
        json::object o;
        o["severity"] = i.severity == Severity::error ? "error" : "warning";
        o["pointer"] = i.pointer;
        if (i.value.empty() && !i.value_is_number) {
            o["code"] = i.code;
        } else {
            json::object code;
            if (i.value_is_number) code[i.code] = std::stoll(i.value);
            else code[i.code] = i.value;
            o["code"] = code;
        }
        (i.severity == Severity::error ? errors : warnings).push_back(o);
    }
    root["errors"] = errors;
    root["warnings"] = warnings;
    return json::serialize(root);
}

} // namespace vik::workflow
