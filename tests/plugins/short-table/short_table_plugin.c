/* Declares a tracker whose vik.tracker/1 table stops before set_state (a table built against a
 * header that was never published): the host must refuse it at load, naming the sizes. */
#include <stddef.h>
#include <string.h>
#include <vik/plugin.h>

static vik_status create(const vik_host_api *host, const char *settings, void **out, vik_errbuf *err) {
    (void)host;
    (void)settings;
    (void)err;
    *out = NULL;
    return VIK_OK;
}
static void destroy(void *instance) { (void)instance; }
static vik_status pull(void *instance, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    (void)instance;
    (void)timeout_ms;
    (void)err;
    out->write(out->ctx, "[]", 2);
    return VIK_OK;
}

static const vik_tracker_v1 table = {offsetof(vik_tracker_v1, set_state), create, destroy, pull, NULL, NULL, NULL};

static const void *get_interface(const char *id) { return strcmp(id, VIK_TRACKER_V1) == 0 ? &table : NULL; }

VIK_PLUGIN_EXPORT const vik_entry vik_plugin_entry = {VIK_ABI_MAJOR, VIK_ABI_MINOR, sizeof(vik_entry),
                                                      "short-table", "0.1.0",       "a tracker table cut short",
                                                      get_interface, NULL,          NULL};
