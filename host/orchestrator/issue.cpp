#include "orchestrator/issue.hpp"

#include "util/untrusted_text.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>

#include <array>
#include <cstring>
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

// ---- the quick look: most of a large pull is issues no stage takes -----------------------------

// The top-level members of one element that decide whether it is a clean issue and whether the
// scheduler needs it, read by Boost.JSON's SAX parser (which also checks the element is valid
// JSON) without building a tree. Only the id and the state are kept as text.
struct ElementScan {
    constexpr static std::size_t max_object_size = std::size_t(-1);
    constexpr static std::size_t max_array_size = std::size_t(-1);
    constexpr static std::size_t max_key_size = std::size_t(-1);
    constexpr static std::size_t max_string_size = std::size_t(-1);
    using ec_t = boost::system::error_code;

    enum Slot { id, identifier, title, state, status, description, desc, slots, none };
    struct Member {
        bool present = false, is_string = false;
        std::string text; // id, identifier, state and status only
    };
    std::array<Member, slots> members;
    int depth = 0;
    bool root_is_object = false;
    Slot slot = none; // the top-level member whose value comes next
    std::string key, part;

    void reset() {
        for (auto &m : members) {
            m.present = m.is_string = false;
            m.text.clear();
        }
        depth = 0;
        root_is_object = false;
        slot = none;
        key.clear();
        part.clear();
    }
    static bool keeps_text(Slot s) { return s == id || s == identifier || s == state || s == status; }
    void other_value() {
        if (depth == 1 && slot != none) members[slot] = Member{true, false, {}};
        slot = none;
    }
    bool on_document_begin(ec_t &) { return true; }
    bool on_document_end(ec_t &) { return true; }
    bool on_object_begin(ec_t &) {
        if (depth == 0) root_is_object = true;
        other_value();
        ++depth;
        return true;
    }
    bool on_array_begin(ec_t &) {
        other_value();
        ++depth;
        return true;
    }
    bool on_object_end(std::size_t, ec_t &) { return --depth, true; }
    bool on_array_end(std::size_t, ec_t &) { return --depth, true; }
    bool on_key_part(boost::json::string_view s, std::size_t, ec_t &) {
        if (depth == 1) key.append(s.data(), s.size());
        return true;
    }
    bool on_key(boost::json::string_view s, std::size_t, ec_t &) {
        if (depth != 1) return true;
        std::string_view k = key.empty() ? std::string_view(s.data(), s.size()) : (key.append(s.data(), s.size()), key);
        using namespace std::string_view_literals;
        slot = k == "id"sv            ? id
               : k == "identifier"sv  ? identifier
               : k == "title"sv       ? title
               : k == "state"sv       ? state
               : k == "status"sv      ? status
               : k == "description"sv ? description
               : k == "desc"sv        ? desc
                                      : none;
        key.clear();
        return true;
    }
    bool on_string_part(boost::json::string_view s, std::size_t, ec_t &) {
        if (depth == 1 && keeps_text(slot)) part.append(s.data(), s.size());
        return true;
    }
    bool on_string(boost::json::string_view s, std::size_t, ec_t &) {
        if (depth != 1 || slot == none) return true;
        Member &m = members[slot];
        m.present = m.is_string = true;
        if (keeps_text(slot)) {
            if (part.empty()) {
                m.text.assign(s.data(), s.size());
            } else {
                part.append(s.data(), s.size());
                m.text.swap(part);
                part.clear();
            }
        }
        slot = none;
        return true;
    }
    bool on_number_part(boost::json::string_view, ec_t &) { return true; }
    bool on_int64(int64_t, boost::json::string_view, ec_t &) { return other_value(), true; }
    bool on_uint64(uint64_t, boost::json::string_view, ec_t &) { return other_value(), true; }
    bool on_double(double, boost::json::string_view, ec_t &) { return other_value(), true; }
    bool on_bool(bool, ec_t &) { return other_value(), true; }
    bool on_null(ec_t &) { return other_value(), true; }
    bool on_comment_part(boost::json::string_view, ec_t &) { return true; }
    bool on_comment(boost::json::string_view, ec_t &) { return true; }

    // One of a name and its alias, as a string (nullptr: absent, both set, or not a string).
    const Member *one_of(Slot a, Slot b) const {
        const Member &x = members[a];
        const Member *y = b == none ? nullptr : &members[b];
        if (x.present && y && y->present) return nullptr;
        const Member *m = x.present ? &x : (y && y->present ? y : nullptr);
        return m && m->is_string ? m : nullptr;
    }
    // Whether check_one would take the element as it is (the same rules; any doubt: no, and the
    // element is looked at whole).
    bool clean() const {
        if (!root_is_object) return false;
        const Member *i = one_of(id, identifier), *s = one_of(state, status);
        if (!i || i->text.empty() || !util::is_valid_utf8(i->text) || !s) return false;
        if (!members[title].present || !members[title].is_string) return false;
        if (members[description].present && members[desc].present) return false;
        for (Slot d : {description, desc})
            if (members[d].present && !members[d].is_string) return false;
        return true;
    }
    const std::string &id_text() const { return one_of(id, identifier)->text; }
    const std::string &state_text() const { return one_of(state, status)->text; }
};

// Where the next '"' that ends a string is, from `i` (inside the string); npos when none.
size_t string_end(std::string_view text, size_t i) {
    for (;;) {
        const void *q = std::memchr(text.data() + i, '"', text.size() - i);
        if (q == nullptr) return std::string_view::npos;
        size_t at = static_cast<size_t>(static_cast<const char *>(q) - text.data());
        size_t backslashes = 0;
        while (at - backslashes > i && text[at - backslashes - 1] == '\\')
            ++backslashes;
        if (backslashes % 2 == 0) return at;
        i = at + 1;
    }
}

size_t skip_space(std::string_view text, size_t i) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        ++i;
    return i;
}

// The elements of a top-level array as texts, found by brackets, strings and commas alone;
// nullopt when the text is not shaped like one array (the tree path then says what is wrong).
// Each element's text is checked as JSON by its scan.
std::optional<std::vector<std::string_view>> split_array(std::string_view text) {
    size_t i = skip_space(text, 0);
    if (i == text.size() || text[i] != '[') return std::nullopt;
    std::vector<std::string_view> out;
    i = skip_space(text, i + 1);
    if (i < text.size() && text[i] == ']') {
        if (skip_space(text, i + 1) != text.size()) return std::nullopt;
        return out;
    }
    for (;;) {
        size_t start = i;
        int depth = 0;
        for (; i < text.size(); ++i) {
            char c = text[i];
            if (c == '"') {
                i = string_end(text, i + 1);
                if (i == std::string_view::npos) return std::nullopt;
            } else if (c == '[' || c == '{') {
                ++depth;
            } else if (c == ']' || c == '}') {
                if (depth == 0) break;
                --depth;
            } else if (c == ',' && depth == 0) {
                break;
            }
        }
        if (i >= text.size() || text[i] == '}') return std::nullopt;
        out.push_back(text.substr(start, i - start));
        if (text[i] == ']') {
            if (skip_space(text, i + 1) != text.size()) return std::nullopt;
            return out;
        }
        i = skip_space(text, i + 1);
    }
}

// Collects a pull's issues; one element at a time, in tracker order.
class Collector {
  public:
    // Room for every element at once: a large pull grows no table or list step by step.
    Collector(const IssueInterest *interest, size_t elements) : interest_(interest) {
        seen_.reserve(elements);
        if (interest_) left_out_.reserve(elements);
    }

    // An element read whole (a tree): checked, counted, and built when the scheduler needs it.
    void add(const json::value &element, size_t i) {
        auto checked = check_one(element, i);
        if (!checked) {
            std::string id;
            if (element.is_object())
                if (auto *v = element.get_object().if_contains("id"); v && v->is_string()) id = std::string(v->get_string());
            out.skipped.push_back({i, id, checked.error()});
            out.warnings.push_back(checked.error() + "; issue skipped (the other issues of this pull go on)");
            return;
        }
        if (!counted(checked->id, checked->state, i)) return;
        Issue issue = build_one(element.get_object(), *checked);
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

    // Whether the scheduler needs the issue whole (without an interest: every one).
    bool wanted(std::string_view id, std::string_view state) const {
        return !interest_ || interest_->states.count(state) || interest_->ids.count(id);
    }

    // A valid issue: false when it is a duplicate, or when it is counted and left out.
    bool counted(std::string_view id, std::string_view state, size_t i) {
        if (!seen_.insert(std::string(id)).second) {
            out.warnings.push_back("duplicate issue id '" + std::string(id) + "' at index " + std::to_string(i) +
                                   " ignored (the first one wins)");
            return false;
        }
        ++out.pulled;
        if (wanted(id, state)) return true;
        left_out_.emplace_back(id, state);
        return false;
    }

    IntakeResult finish() {
        if (!left_out_.empty()) {
            std::set<std::string_view> blockers;
            for (const auto &i : out.issues)
                for (const auto &b : i.blocked_by)
                    blockers.insert(b);
            if (!blockers.empty())
                for (const auto &[id, state] : left_out_)
                    if (blockers.count(id)) out.blocker_states.emplace(id, util::to_valid_utf8(state));
        }
        return std::move(out);
    }

    IntakeResult out;

  private:
    const IssueInterest *interest_;
    std::unordered_set<std::string> seen_;
    std::vector<std::pair<std::string, std::string>> left_out_; // (id, state), with an interest
};

json::parse_options issue_parse_options(size_t depth) {
    json::parse_options opts;
    opts.max_depth = depth;
    opts.allow_invalid_utf8 = true; // checked per issue: one broken byte must not fail the pull
    return opts;
}

// With an interest: each element is scanned without a tree, and only those the scheduler needs
// (or that are not clean issues, so check_one says what is wrong) are parsed whole. nullopt when
// an element is not valid JSON: the tree path then refuses the pull with the same words as always.
std::optional<IntakeResult> parse_by_element(const std::string &text, const IssueInterest &interest) {
    auto elements = split_array(text);
    if (!elements) return std::nullopt;
    Collector collect(&interest, elements->size());
    // The array is the first level: an element may nest one level less than the pull.
    json::parse_options opts = issue_parse_options(kMaxIssueJsonDepth - 1);
    boost::json::basic_parser<ElementScan> scanner(opts);
    json::monotonic_resource arena; // the trees of the elements parsed whole
    for (size_t i = 0; i < elements->size(); ++i) {
        std::string_view element = (*elements)[i];
        scanner.reset();
        ElementScan &scan = scanner.handler();
        scan.reset();
        boost::system::error_code ec;
        size_t used = scanner.write_some(false, element.data(), element.size(), ec);
        if (ec || skip_space(element, used) != element.size()) return std::nullopt;
        if (scan.clean() && !collect.wanted(scan.id_text(), scan.state_text())) {
            collect.counted(scan.id_text(), scan.state_text(), i);
            continue;
        }
        json::value tree = json::parse(element, ec, &arena, opts);
        if (ec) return std::nullopt;
        collect.add(tree, i);
    }
    return collect.finish();
}

} // namespace

std::expected<IntakeResult, std::string> parse_issues_as_tree(const std::string &text, const IssueInterest *interest) {
    boost::system::error_code ec;
    // The document lives only for this call: one arena, released at once, instead of an
    // allocation per value (what kept issues need is copied out).
    json::monotonic_resource arena;
    json::value doc = json::parse(text, ec, &arena, issue_parse_options(kMaxIssueJsonDepth));
    if (ec) {
        std::string shown = util::escape_for_terminal(util::to_valid_utf8(text.substr(0, 200)));
        if (ec == json::error::too_deep)
            return std::unexpected("issues are nested deeper than " + std::to_string(kMaxIssueJsonDepth) + " levels (" +
                                   ec.message() + "): " + shown);
        return std::unexpected("issues are not valid JSON (" + ec.message() + "): " + shown);
    }
    if (!doc.is_array()) return std::unexpected(std::string("issues must be a JSON array, found ") + kind_name(doc));
    auto &arr = doc.get_array();
    Collector collect(interest, arr.size());
    for (size_t i = 0; i < arr.size(); ++i)
        collect.add(arr[i], i);
    return collect.finish();
}

std::expected<IntakeResult, std::string> parse_issues(const std::string &text, const IssueInterest *interest) {
    // Without an interest every issue is built: one tree is the cheaper way.
    if (interest)
        if (auto quick = parse_by_element(text, *interest)) return std::move(*quick);
    return parse_issues_as_tree(text, interest);
}

} // namespace vik::orchestrator
