// The GitHub tracker. The REST/GraphQL client lands with the GitHub tracker work; until then every
// operation reports "unsupported" with a message instead of pretending to succeed.
#include <vik/plugin.hpp>

#include <cstring>

namespace {

constexpr const char *kId = "github-tracker";

vik_status create(const vik_host_api *, const char *, void **out, vik_errbuf *) {
    *out = nullptr;
    return VIK_OK;
}
void destroy(void *) {}
vik_status pull(void *, uint32_t, const vik_sink *, vik_errbuf *err) {
    return vik::sdk::unsupported(err, kId, "pull (the GitHub client is not implemented yet)");
}
vik_status fetch(void *, const char *, uint32_t, const vik_sink *, vik_errbuf *err) {
    return vik::sdk::unsupported(err, kId, "fetch");
}
vik_status set_state(void *, const char *, const char *, uint32_t, vik_errbuf *err) {
    return vik::sdk::unsupported(err, kId, "set_state");
}
vik_status comment(void *, const char *, const char *, uint32_t, vik_errbuf *err) {
    return vik::sdk::unsupported(err, kId, "comment");
}

const vik_tracker_v1 tracker = {sizeof(vik_tracker_v1), create, destroy, pull, fetch, set_state, comment};

const void *get_interface(const char *id) { return std::strcmp(id, VIK_TRACKER_V1) == 0 ? &tracker : nullptr; }

} // namespace

VIK_PLUGIN("github-tracker", "0.1.0", "Reads GitHub issues (labels or Projects status as state)", get_interface);
