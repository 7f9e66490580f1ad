/* A deliberately stuck tracker: pull sleeps whatever its timeout says, 30 s or the setting
 * `sleep_ms` (read with the host's JSON service). */
#include <vik/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slow_tracker {
    int64_t sleep_ms;
} slow_tracker;

static vik_status s_create(const vik_host_api *host, const char *settings, void **out, vik_errbuf *err) {
    slow_tracker *t = (slow_tracker *)calloc(1, sizeof *t);
    if (!t) return VIK_ERROR;
    t->sleep_ms = 30000;
    const vik_json_v1 *json =
        VIK_HOST_HAS_SERVICES(host) ? (const vik_json_v1 *)host->get_service(host->host_ctx, VIK_SERVICE_JSON_V1) : NULL;
    vik_json *doc = NULL;
    if (json && json->parse(settings, strlen(settings), &doc, err) == VIK_OK) {
        json->get_int(doc, "/sleep_ms", &t->sleep_ms); /* absent: the default stays */
        json->free(doc);
    }
    *out = t;
    return VIK_OK;
}
static void s_destroy(void *instance) { free(instance); }
static vik_status s_pull(void *instance, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    (void)timeout_ms, (void)err;
    const slow_tracker *t = (const slow_tracker *)instance;
    struct timespec ts = {(time_t)(t->sleep_ms / 1000), (long)(t->sleep_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    out->write(out->ctx, "[]", 2);
    return VIK_OK;
}
static vik_status s_fetch(void *i, const char *ids, uint32_t t, const vik_sink *out, vik_errbuf *err) {
    (void)i, (void)ids, (void)t, (void)out;
    snprintf(err->data, err->capacity, "slow-tracker: fetch is not supported");
    return VIK_UNSUPPORTED;
}
static vik_status s_set_state(void *i, const char *id, const char *st, uint32_t t, vik_errbuf *err) {
    (void)i, (void)id, (void)st, (void)t;
    snprintf(err->data, err->capacity, "slow-tracker: set_state is not supported");
    return VIK_UNSUPPORTED;
}
static vik_status s_comment(void *i, const char *id, const char *b, uint32_t t, vik_errbuf *err) {
    (void)i, (void)id, (void)b, (void)t;
    snprintf(err->data, err->capacity, "slow-tracker: comment is not supported");
    return VIK_UNSUPPORTED;
}
static const vik_tracker_v1 table = {sizeof(vik_tracker_v1), s_create, s_destroy, s_pull, s_fetch, s_set_state, s_comment};
static const void *get_interface(const char *id) { return strcmp(id, VIK_TRACKER_V1) == 0 ? (const void *)&table : NULL; }

VIK_PLUGIN_EXPORT const vik_entry vik_plugin_entry = {VIK_ABI_MAJOR,  VIK_ABI_MINOR, sizeof(vik_entry),
                                                      "slow-tracker", "0.1.0",       "a tracker whose pull never returns in time",
                                                      get_interface,  NULL,          NULL};
