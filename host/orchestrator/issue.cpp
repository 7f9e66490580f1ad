#include "orchestrator/issue.hpp"

#include "util/untrusted_text.hpp"

#include <boost/json.hpp>
#include <boost/json/monotonic_resource.hpp>

#include <set>
#include <unordered_set>

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

// An id as messages show it: at most 100 bytes, controls escaped.
std::string shown_id(const std::string &id) {
    if (id.size() <= 100) return util::escape_for_terminal(id);
    return util::escape_for_terminal(util::to_valid_utf8(id.substr(0, 100))) + "...";
}

// The fields every issue must have, checked; views into the parsed document.
struct Checked {
    std::string_view id, title, state;
    std::optional<std::string_view> description;
};

// Reads `name` or its alias as a view; the same rules and texts as `field`.
std::expected<std::optional<std::string_view>, std::string> field_view(const json::object &o, size_t index, const char *name,
                                                                       const char *alias) {
    const json::value *a = o.if_contains(name);
    const json::value *b = alias ? o.if_contains(alias) : nullptr;
    if (a && b)
        return std::unexpected("issue at index " + std::to_string(index) + ": both `" + std::string(name) + "` and its alias `" +
                               alias + "` are set; keep one");
    const json::value *v = a ? a : b;
    if (!v) return std::optional<std::string_view>();
    if (!v->is_string())
        return std::unexpected("issue at index " + std::to_string(index) + ": field `" + (a ? name : alias) +
                               "` must be a string, found " + kind_name(*v));
    return std::optional<std::string_view>(std::string_view(v->get_string()));
}

// One element of the array checked, or the reason it is skipped (naming its index and field).
std::expected<Checked, std::string> check_one(const json::value &element, size_t i) {
    if (!element.is_object())
        return std::unexpected("issue at index " + std::to_string(i) + ": expected an object, found " + kind_name(element));
    const auto &o = element.get_object();
    auto id = field_view(o, i, "id", "identifier");
    if (!id) return std::unexpected(id.error());
    // Messages are made only when there is something to say: most issues are fine.
    auto where = [i] { return "issue at index " + std::to_string(i); };
    if (!*id) return std::unexpected(where() + ": missing field `id`");
    if ((*id)->empty()) return std::unexpected(where() + ": field `id` is empty");
    // The id goes back to the tracker as it came: a mangled one would name another issue.
    if (!util::is_valid_utf8(**id)) return std::unexpected(where() + ": field `id` is not valid UTF-8");
    auto named_where = [&] { return "issue '" + shown_id(std::string(**id)) + "' at index " + std::to_string(i); };
    auto named = [&](std::string e) { return e.replace(0, where().size(), named_where()); };
    auto title = field_view(o, i, "title", nullptr);
    if (!title) return std::unexpected(named(title.error()));
    if (!*title) return std::unexpected(named_where() + ": missing field `title`");
    auto state = field_view(o, i, "state", "status");
    if (!state) return std::unexpected(named(state.error()));
    if (!*state) return std::unexpected(named_where() + ": missing field `state`");
    auto desc = field_view(o, i, "description", "desc");
    if (!desc) return std::unexpected(named(desc.error()));
    return Checked{**id, **title, **state, *desc};
}

// A checked element -> an Issue, its fields copied out of the document.
Issue build_one(const json::object &o, const Checked &c) {
    Issue issue;
    issue.id = c.id;
    issue.title = c.title;
    issue.state = c.state;
    issue.description = c.description.value_or("");
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
    if (auto *cr = o.if_contains("created_at"); cr && cr->is_string()) issue.created_at = std::string(cr->get_string());
    if (auto *b = o.if_contains("blocked_by"); b && b->is_array())
        for (auto &x : b->get_array())
            if (x.is_string()) issue.blocked_by.emplace_back(x.get_string());
    return issue;
}

} // namespace

std::expected<IntakeResult, std::string> parse_issues(const std::string &text, const IssueInterest *interest) {
    boost::system::error_code ec;
    json::parse_options opts;
    opts.max_depth = kMaxIssueJsonDepth;
    opts.allow_invalid_utf8 = true; // checked per issue below: one broken byte must not fail the pull
    // The document lives only for this call: one arena, released at once, instead of an
    // allocation per value (what kept issues need is copied out).
    json::monotonic_resource arena;
    json::value doc = json::parse(text, ec, &arena, opts);
    if (ec) {
        std::string shown = util::escape_for_terminal(util::to_valid_utf8(text.substr(0, 200)));
        if (ec == json::error::too_deep)
            return std::unexpected("issues are nested deeper than " + std::to_string(kMaxIssueJsonDepth) + " levels (" +
                                   ec.message() + "): " + shown);
        return std::unexpected("issues are not valid JSON (" + ec.message() + "): " + shown);
    }
    if (!doc.is_array()) return std::unexpected(std::string("issues must be a JSON array, found ") + kind_name(doc));
    IntakeResult out;
    std::unordered_set<std::string_view> seen;
    std::vector<std::pair<std::string_view, std::string_view>> left_out; // (id, state), with an interest
    auto &arr = doc.get_array();
    seen.reserve(arr.size());
    for (size_t i = 0; i < arr.size(); ++i) {
        auto checked = check_one(arr[i], i);
        if (!checked) {
            std::string id;
            if (arr[i].is_object())
                if (auto *v = arr[i].get_object().if_contains("id"); v && v->is_string()) id = std::string(v->get_string());
            out.skipped.push_back({i, id, checked.error()});
            out.warnings.push_back(checked.error() + "; issue skipped (the other issues of this pull go on)");
            continue;
        }
        if (!seen.insert(checked->id).second) {
            out.warnings.push_back("duplicate issue id '" + std::string(checked->id) + "' at index " + std::to_string(i) +
                                   " ignored (the first one wins)");
            continue;
        }
        ++out.pulled;
        if (interest && !interest->states.count(checked->state) && !interest->ids.count(checked->id)) {
            left_out.emplace_back(checked->id, checked->state);
            continue;
        }
        Issue issue = build_one(arr[i].get_object(), *checked);
        // Text fields are data for prompts and files: invalid bytes become U+FFFD.
        json::value fields = std::move(issue.fields);
        if (util::make_valid_utf8(fields)) {
            issue.fields = std::move(fields.get_object());
            auto field_text = [&](const char *k) { return std::string(issue.fields.at(k).get_string()); };
            issue.title = field_text("title");
            issue.state = field_text("state");
            issue.description = field_text("description");
            out.warnings.push_back("issue '" + shown_id(issue.id) + "' at index " + std::to_string(i) +
                                   ": invalid UTF-8 in its text replaced by U+FFFD");
        } else {
            issue.fields = std::move(fields.get_object());
        }
        out.issues.push_back(std::move(issue));
    }
    if (!left_out.empty()) {
        std::set<std::string_view> blockers;
        for (const auto &i : out.issues)
            for (const auto &b : i.blocked_by)
                blockers.insert(b);
        if (!blockers.empty())
            for (const auto &[id, state] : left_out)
                if (blockers.count(id)) out.blocker_states.emplace(id, util::to_valid_utf8(state));
    }
    return out;
}

} // namespace vik::orchestrator
