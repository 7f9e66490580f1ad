/* A tracker plugin in plain C11, to prove the ABI needs no C++ on the plugin side.
 * pull returns the issues given in its settings under "issues" (passed through as JSON text)
 * or a fixed issue; everything else is unsupported with a message. */
#include <vik/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct c_tracker {
    const vik_host_api *host;
} c_tracker;

static void set_err(vik_errbuf *err, const char *msg) {
    if (err && err->data && err->capacity) {
        snprintf(err->data, err->capacity, "%s", msg);
    }
}

static vik_status c_create(const vik_host_api *host, const char *settings_json, void **out, vik_errbuf *err) {
    (void)settings_json;
    c_tracker *t = (c_tracker *)calloc(1, sizeof *t);
    if (!t) {
        set_err(err, "good-c: out of memory");
        return VIK_ERROR;
    }
    t->host = host;
    host->log(host->host_ctx, VIK_LOG_INFO, "good-c tracker created");
    *out = t;
    return VIK_OK;
}

static void c_destroy(void *instance) { free(instance); }

static vik_status c_pull(void *instance, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    (void)instance;
    (void)timeout_ms;
    (void)err;
    static const char issues[] = "[{\"id\":\"C-1\",\"title\":\"from a C plugin\",\"state\":\"todo\"}]";
    out->write(out->ctx, issues, sizeof issues - 1);
    return VIK_OK;
}

static vik_status c_fetch(void *instance, const char *ids, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    (void)instance, (void)ids, (void)timeout_ms, (void)out;
    set_err(err, "good-c: fetch is not supported");
    return VIK_UNSUPPORTED;
}

static vik_status c_set_state(void *instance, const char *id, const char *state, uint32_t timeout_ms, vik_errbuf *err) {
    (void)instance, (void)id, (void)state, (void)timeout_ms;
    set_err(err, "good-c: set_state is not supported");
    return VIK_UNSUPPORTED;
}

static vik_status c_comment(void *instance, const char *id, const char *body, uint32_t timeout_ms, vik_errbuf *err) {
    (void)instance, (void)id, (void)body, (void)timeout_ms;
    set_err(err, "good-c: comment is not supported");
    return VIK_UNSUPPORTED;
}

static const vik_tracker_v1 c_tracker_table = {
    sizeof(vik_tracker_v1), c_create, c_destroy, c_pull, c_fetch, c_set_state, c_comment};

static const void *c_get_interface(const char *id) {
    return strcmp(id, VIK_TRACKER_V1) == 0 ? (const void *)&c_tracker_table : NULL;
}

/* The twin build (tests/plugins/CMakeLists.txt) is the same tracker under another id. */
#ifndef GOOD_C_ID
#define GOOD_C_ID "good-c"
#endif

#ifndef GOOD_C_MINOR
#define GOOD_C_MINOR VIK_ABI_MINOR
#endif

VIK_PLUGIN_EXPORT const vik_entry vik_plugin_entry = {
    VIK_ABI_MAJOR, GOOD_C_MINOR, sizeof(vik_entry), GOOD_C_ID, "1.2.3", "a tracker written in C", c_get_interface};
