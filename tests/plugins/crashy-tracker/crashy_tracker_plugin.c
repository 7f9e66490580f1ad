/* A tracker whose pull crashes the process (a NULL write): the host must name the plugin, the call
 * and leave no stale state behind. */
#include <vik/plugin.h>

#include <stdlib.h>
#include <string.h>

static vik_status create(const vik_host_api *host, const char *settings_json, void **out, vik_errbuf *err) {
    (void)host, (void)settings_json, (void)err;
    *out = malloc(1);
    return VIK_OK;
}
static void destroy(void *instance) { free(instance); }
static vik_status pull(void *instance, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    (void)instance, (void)timeout_ms, (void)out, (void)err;
    volatile int *nowhere = NULL;
    *nowhere = 42;
    return VIK_OK;
}
static vik_status unsupported(void) { return VIK_UNSUPPORTED; }
static vik_status fetch(void *i, const char *ids, uint32_t t, const vik_sink *o, vik_errbuf *e) {
    (void)i, (void)ids, (void)t, (void)o, (void)e;
    return unsupported();
}
static vik_status set_state(void *i, const char *id, const char *s, uint32_t t, vik_errbuf *e) {
    (void)i, (void)id, (void)s, (void)t, (void)e;
    return unsupported();
}
static vik_status comment(void *i, const char *id, const char *b, uint32_t t, vik_errbuf *e) {
    (void)i, (void)id, (void)b, (void)t, (void)e;
    return unsupported();
}
static const vik_tracker_v1 table = {sizeof(vik_tracker_v1), create, destroy, pull, fetch, set_state, comment};
static const void *get_interface(const char *id) { return strcmp(id, VIK_TRACKER_V1) == 0 ? (const void *)&table : NULL; }
VIK_PLUGIN_EXPORT const vik_entry vik_plugin_entry = {VIK_ABI_MAJOR,    VIK_ABI_MINOR, sizeof(vik_entry),
                                                      "crashy-tracker", "1.0.0",       "a tracker whose pull crashes",
                                                      get_interface,    NULL,          NULL};
