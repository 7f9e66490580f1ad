#include "orchestrator/issue.hpp"

#include "util/untrusted_text.hpp"

#include <boost/json.hpp>

#include <set>

namespace vik::orchestrator {

namespace json = boost::json;

namespace {

const char *kind_name(const json::value &v) {
    switch (v.kind()) {
    case json::kind::null:
        return "null";
    case json::kind::bool_:
        return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
        return "a number";
    case json::kind::string:
        return "a string";
    case json::kind::array:
        return "an array";
    case json::kind::object:
        return "an object";
    }
    return "?";
}

// Reads `name` or its alias; both present is an error; a present value must be a string.
std::expected<std::optional<std::string>, std::string> field(const json::object &o, size_t index, const char *name,
                                                             const char *alias) {
    const json::value *a = o.if_contains(name);
    const json::value *b = alias ? o.if_contains(alias) : nullptr;
    std::string where = "issue at index " + std::to_string(index);
    if (a && b)
        return std::unexpected(where + ": both `" + std::string(name) + "` and its alias `" + alias + "` are set; keep one");
    const json::value *v = a ? a : b;
    if (!v) return std::optional<std::string>();
    const char *used = a ? name : alias;
    if (!v->is_string()) return std::unexpected(where + ": field `" + used + "` must be a string, found " + kind_name(*v));
    return std::optional<std::string>(std::string(v->get_string()));
}

// An id as messages show it: at most 100 bytes, controls escaped.
std::string shown_id(const std::string &id) {
    if (id.size() <= 100) return util::escape_for_terminal(id);
    return util::escape_for_terminal(util::to_valid_utf8(id.substr(0, 100))) + "...";
}

// One element of the array -> an Issue, or the reason it is skipped (naming its index and field).
std::expected<Issue, std::string> parse_one(const json::value &element, size_t i) {
    std::string where = "issue at index " + std::to_string(i);
    if (!element.is_object()) return std::unexpected(where + ": expected an object, found " + kind_name(element));
    const auto &o = element.get_object();
    auto id = field(o, i, "id", "identifier");
    if (!id) return std::unexpected(id.error());
    if (!*id) return std::unexpected(where + ": missing field `id`");
    if ((*id)->empty()) return std::unexpected(where + ": field `id` is empty");
    // The id goes back to the tracker as it came: a mangled one would name another issue.
    if (!util::is_valid_utf8(**id)) return std::unexpected(where + ": field `id` is not valid UTF-8");
    where = "issue '" + shown_id(**id) + "' at index " + std::to_string(i);
    auto named = [&](std::string e) { return e.replace(0, ("issue at index " + std::to_string(i)).size(), where); };
    auto title = field(o, i, "title", nullptr);
    if (!title) return std::unexpected(named(title.error()));
    if (!*title) return std::unexpected(where + ": missing field `title`");
    auto state = field(o, i, "state", "status");
    if (!state) return std::unexpected(named(state.error()));
    if (!*state) return std::unexpected(where + ": missing field `state`");
    auto desc = field(o, i, "description", "desc");
    if (!desc) return std::unexpected(named(desc.error()));

    Issue issue;
    issue.id = **id;
    issue.title = **title;
    issue.state = **state;
    issue.description = desc->value_or("");
    for (const auto &kv : o) {
        std::string_view k = kv.key();
        if (k == "id" || k == "identifier" || k == "title" || k == "state" || k == "status" || k == "description" || k == "desc")
            continue;
        issue.fields[k] = kv.value();
    }
    issue.fields["id"] = issue.id;
    issue.fields["title"] = issue.title;
    issue.fields["description"] = issue.description;
    issue.fields["state"] = issue.state;
    if (auto *p = o.if_contains("priority"); p && p->is_int64()) issue.priority = p->get_int64();
    if (auto *c = o.if_contains("created_at"); c && c->is_string()) issue.created_at = std::string(c->get_string());
    if (auto *b = o.if_contains("blocked_by"); b && b->is_array())
        for (auto &x : b->get_array())
            if (x.is_string()) issue.blocked_by.emplace_back(x.get_string());
    return issue;
}

} // namespace

std::expected<IntakeResult, std::string> parse_issues(const std::string &text) {
    boost::system::error_code ec;
    json::parse_options opts;
    opts.max_depth = kMaxIssueJsonDepth;
    opts.allow_invalid_utf8 = true; // checked per issue below: one broken byte must not fail the pull
    json::value doc = json::parse(text, ec, {}, opts);
    if (ec) {
        std::string shown = util::escape_for_terminal(util::to_valid_utf8(text.substr(0, 200)));
        if (ec == json::error::too_deep)
            return std::unexpected("issues are nested deeper than " + std::to_string(kMaxIssueJsonDepth) + " levels (" +
                                   ec.message() + "): " + shown);
        return std::unexpected("issues are not valid JSON (" + ec.message() + "): " + shown);
    }
    if (!doc.is_array()) return std::unexpected(std::string("issues must be a JSON array, found ") + kind_name(doc));
    IntakeResult out;
    std::set<std::string> seen;
    auto &arr = doc.get_array();
    for (size_t i = 0; i < arr.size(); ++i) {
        auto parsed = parse_one(arr[i], i);
        if (!parsed) {
            std::string id;
            if (arr[i].is_object())
                if (auto *v = arr[i].get_object().if_contains("id"); v && v->is_string()) id = std::string(v->get_string());
            out.skipped.push_back({i, id, parsed.error()});
            out.warnings.push_back(parsed.error() + "; issue skipped (the other issues of this pull go on)");
            continue;
        }
        Issue issue = std::move(*parsed);
        if (!seen.insert(issue.id).second) {
            out.warnings.push_back("duplicate issue id '" + issue.id + "' at index " + std::to_string(i) +
                                   " ignored (the first one wins)");
            continue;
        }
        // Text fields are data for prompts and files: invalid bytes become U+FFFD.
        json::value fields = std::move(issue.fields);
        if (util::make_valid_utf8(fields)) {
            issue.fields = std::move(fields.get_object());
            auto text = [&](const char *k) { return std::string(issue.fields.at(k).get_string()); };
            issue.title = text("title");
            issue.state = text("state");
            issue.description = text("description");
            out.warnings.push_back("issue '" + shown_id(issue.id) + "' at index " + std::to_string(i) +
                                   ": invalid UTF-8 in its text replaced by U+FFFD");
        } else {
            issue.fields = std::move(fields.get_object());
        }
        out.issues.push_back(std::move(issue));
    }
    return out;
}

} // namespace vik::orchestrator
