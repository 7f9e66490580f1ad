/* A tracker plugin in plain C11, to prove the ABI needs no C++ on the plugin side.
 * pull returns the issues given in its settings under "issues" (read with the host's JSON
 * service) or a fixed issue; everything else is unsupported with a message. Library-wide
 * init/deinit (ABI 1.2) log through the host, so tests see that each runs once. */
#include <vik/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct c_tracker {
    const vik_host_api *host;
    char *issues; /* the settings' "issues" as JSON text, or NULL */
} c_tracker;

/* The host the library was initialized with: valid from init until deinit returned. */
static const vik_host_api *library_host;
static int init_count;

static void set_err(vik_errbuf *err, const char *msg) {
    if (err && err->data && err->capacity) {
        snprintf(err->data, err->capacity, "%s", msg);
    }
}

/* A sink that collects into a malloc'd, NUL-terminated string. */
typedef struct text_buf {
    char *data;
    size_t len;
} text_buf;

static void text_write(void *ctx, const char *data, size_t len) {
    text_buf *b = (text_buf *)ctx;
    char *grown = (char *)realloc(b->data, b->len + len + 1);
    if (!grown) return;
    memcpy(grown + b->len, data, len);
    b->len += len;
    grown[b->len] = '\0';
    b->data = grown;
}

static vik_status c_init(const vik_host_api *host, vik_errbuf *err) {
#ifdef GOOD_C_FAIL_INIT
    (void)host;
    (void)init_count;
    set_err(err, "good-c: the library could not set up (a test of a failing init)");
    return VIK_ERROR;
#else
    (void)err;
    const vik_host_info_v1 *info = VIK_HOST_HAS_SERVICES(host)
                                       ? (const vik_host_info_v1 *)host->get_service(host->host_ctx, VIK_SERVICE_HOST_INFO_V1)
                                       : NULL;
    char line[200];
    library_host = host;
    ++init_count;
    snprintf(line, sizeof line, "good-c init %d (host %s, plugin %s)", init_count, info ? info->host_version : "?",
             info ? info->plugin_id : "?");
    host->log(host->host_ctx, VIK_LOG_INFO, line);
    return VIK_OK;
#endif
}

static void c_deinit(void) {
    if (library_host) library_host->log(library_host->host_ctx, VIK_LOG_INFO, "good-c deinit");
    library_host = NULL;
}

static vik_status c_create(const vik_host_api *host, const char *settings_json, void **out, vik_errbuf *err) {
    c_tracker *t = (c_tracker *)calloc(1, sizeof *t);
    if (!t) {
        set_err(err, "good-c: out of memory");
        return VIK_ERROR;
    }
    t->host = host;
    /* The settings' "issues" array, if any, through the host's JSON reader (ABI 1.2). */
    const vik_json_v1 *json =
        VIK_HOST_HAS_SERVICES(host) ? (const vik_json_v1 *)host->get_service(host->host_ctx, VIK_SERVICE_JSON_V1) : NULL;
    vik_json *doc = NULL;
    if (json && json->parse(settings_json, strlen(settings_json), &doc, err) != VIK_OK) {
        free(t);
        return VIK_INVALID_ARGUMENT; /* the error buffer names line and column */
    }
    int32_t type = VIK_JSON_NULL;
    if (doc && json->type(doc, "/issues", &type) == VIK_OK) {
        if (type != VIK_JSON_ARRAY) {
            json->free(doc);
            free(t);
            set_err(err, "good-c: setting 'issues' must be an array of issues");
            return VIK_INVALID_ARGUMENT;
        }
        text_buf b = {NULL, 0};
        vik_sink sink = {&b, text_write};
        json->serialize(doc, "/issues", &sink);
        t->issues = b.data;
    }
    if (doc) json->free(doc);
    host->log(host->host_ctx, VIK_LOG_INFO, "good-c tracker created");
    *out = t;
    return VIK_OK;
}

static void c_destroy(void *instance) {
    c_tracker *t = (c_tracker *)instance;
    free(t->issues);
    free(t);
}

static vik_status c_pull(void *instance, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err) {
    const c_tracker *t = (const c_tracker *)instance;
    (void)timeout_ms;
    (void)err;
    static const char issues[] = "[{\"id\":\"C-1\",\"title\":\"from a C plugin\",\"state\":\"todo\"}]";
    if (t->issues)
        out->write(out->ctx, t->issues, strlen(t->issues));
    else
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

/* GOOD_C_OLD_LAYOUT builds the entry as a plugin of ABI 1.1 saw it: without init and deinit. */
#ifdef GOOD_C_OLD_LAYOUT
#define GOOD_C_ENTRY_SIZE VIK_ENTRY_V1_0_SIZE
#else
#define GOOD_C_ENTRY_SIZE sizeof(vik_entry)
#endif

VIK_PLUGIN_EXPORT const vik_entry vik_plugin_entry = {VIK_ABI_MAJOR,   GOOD_C_MINOR, GOOD_C_ENTRY_SIZE,
                                                      GOOD_C_ID,       "1.2.3",      "a tracker written in C",
                                                      c_get_interface, c_init,       c_deinit};
