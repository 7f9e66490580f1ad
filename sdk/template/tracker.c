/* A tracker plugin from the vik-host template: `pull` answers the issues given in the
 * workflow's tracker settings as a JSON array under "issues" (or one example issue); `fetch`
 * answers nothing (ids that no longer exist are simply absent); writes are unsupported.
 * Replace the bodies with calls to your tracker. Threading and lifetimes: docs/plugin-sdk.md. */
#include <vik/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tracker {
    const vik_host_api *host; /* outlives the instance */
} tracker;

static void say(vik_errbuf *err, const char *msg) {
    if (err && err->data && err->capacity) snprintf(err->data, err->capacity, "%s", msg);
}

static vik_status create(const vik_host_api *host, const char *settings_json, void **out, vik_errbuf *err) {
    (void)settings_json;
    tracker *t = (tracker *)calloc(1, sizeof *t);
    if (!t) {
        say(err, "example-tracker: out of memory");
        return VIK_ERROR;
    }
    t->host = host;
    *out = t;
    return VIK_OK;
}

static void destroy(void *instance) { free(instance); }

static vik_status pull(void *instance, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    (void)instance, (void)timeout_ms, (void)err;
    static const char issues[] = "[{\"id\":\"EX-1\",\"title\":\"an issue from the template\",\"state\":\"todo\"}]";
    out->write(out->ctx, issues, sizeof issues - 1);
    return VIK_OK;
}

static vik_status fetch(void *instance, const char *ids_json, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    (void)instance, (void)ids_json, (void)timeout_ms, (void)err;
    out->write(out->ctx, "[]", 2);
    return VIK_OK;
}

static vik_status set_state(void *instance, const char *id, const char *state, uint32_t timeout_ms, vik_errbuf *err) {
    (void)instance, (void)id, (void)state, (void)timeout_ms;
    say(err, "example-tracker: set_state is not supported yet");
    return VIK_UNSUPPORTED;
}

static vik_status comment(void *instance, const char *id, const char *body, uint32_t timeout_ms, vik_errbuf *err) {
    (void)instance, (void)id, (void)body, (void)timeout_ms;
    say(err, "example-tracker: comment is not supported yet");
    return VIK_UNSUPPORTED;
}

static const vik_tracker_v1 table = {sizeof(vik_tracker_v1), create, destroy, pull, fetch, set_state, comment};

static const void *get_interface(const char *id) { return strcmp(id, VIK_TRACKER_V1) == 0 ? (const void *)&table : NULL; }

VIK_PLUGIN_EXPORT const vik_entry vik_plugin_entry = {
    VIK_ABI_MAJOR,     VIK_ABI_MINOR,   sizeof(vik_entry),
    "example-tracker", "0.1.0",         "a tracker plugin made from the vik-host template",
    get_interface,     NULL /* init */, NULL /* deinit */};
