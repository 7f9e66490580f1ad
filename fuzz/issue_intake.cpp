// Fuzz target: a tracker's issue JSON through parse_issues (vik-compat §3 intake). Any text must
// parse or fail with a message; a parsed batch must hold what the scheduler relies on: unique,
// non-empty ids, and `fields` agreeing with the typed members.
#include "orchestrator/issue.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

namespace {

[[noreturn]] void fail(const char *what, const std::string &id) {
    std::fprintf(stderr, "intake invariant broken: %s (issue id '%s')\n", what, id.c_str());
    std::abort();
}

bool field_is(const boost::json::object &o, const char *key, const std::string &want) {
    auto *v = o.if_contains(key);
    return v && v->is_string() && v->get_string() == want;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string text(reinterpret_cast<const char *>(data), size);
    auto r = vik::orchestrator::parse_issues(text);
    if (!r) {
        if (r.error().empty()) fail("a failed batch has an empty message", "");
        return 0;
    }
    std::set<std::string> ids;
    for (const auto &issue : r->issues) {
        if (issue.id.empty()) fail("empty id", issue.id);
        if (!ids.insert(issue.id).second) fail("duplicate id after de-duplication", issue.id);
        if (!field_is(issue.fields, "id", issue.id) || !field_is(issue.fields, "title", issue.title) ||
            !field_is(issue.fields, "state", issue.state) || !field_is(issue.fields, "description", issue.description))
            fail("fields disagree with the typed members", issue.id);
    }
    return 0;
}
