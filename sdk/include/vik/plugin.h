/*
 * vik/plugin.h: the whole binary interface between vik-host and its plugins.
 *
 * C11, depends only on <stdint.h>, <stddef.h>, <stdbool.h>; compiles as C and as C++.
 *
 * Rules that hold for every declaration below (see docs/plugin-sdk.md):
 *  - A plugin exports exactly one symbol, `vik_plugin_entry` (a `const vik_entry`).
 *    The host refuses a plugin whose `abi_major` differs from VIK_ABI_MAJOR.
 *  - Interfaces are found by versioned string id through `get_interface`. A published
 *    interface table never changes; a new capability gets a new id.
 *  - Structs that may grow carry `struct_size` first and only ever grow at the end; a reader
 *    must check `struct_size` before touching a field added after version 1.0.
 *  - The caller owns memory. Pointer arguments are borrowed for the duration of the call only,
 *    except the `vik_host_api *host` of `create` (valid until that instance's `destroy` returned)
 *    and of `init` (valid until `deinit` returned).
 *    Data flowing back to the caller goes through a `vik_sink` the caller provides; the
 *    receiver copies it. Nothing allocated on one side is freed on the other.
 *  - Every fallible function returns a `vik_status` and, on failure, writes a NUL-terminated
 *    UTF-8 message into a caller-owned `vik_errbuf` (truncated to its capacity).
 *  - No exception, no C++ type, no allocator crosses this boundary.
 *  - Structured payloads (issues, settings, events, hook contexts) cross as UTF-8 JSON text.
 *  - Thread annotations:
 *      [loop]    the host's scheduling thread; must not block.
 *      [worker]  a host worker thread; may block up to the timeout passed in.
 *      [process] the host's process I/O thread; must not block.
 *      [any]     any thread; must be thread-safe and must not block.
 */
#ifndef VIK_PLUGIN_H
#define VIK_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIK_ABI_MAJOR 1
#define VIK_ABI_MINOR 2

/* The name of the one symbol every plugin exports. */
#define VIK_ENTRY_SYMBOL "vik_plugin_entry"

#if defined(__GNUC__) || defined(__clang__)
#define VIK_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define VIK_PLUGIN_EXPORT
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status codes and errors                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef int32_t vik_status;
#define VIK_OK 0
#define VIK_ERROR 1            /* failed; the error buffer says why */
#define VIK_UNSUPPORTED 2      /* this plugin does not implement the operation */
#define VIK_INVALID_ARGUMENT 3 /* bad settings or arguments; the error buffer names them */
#define VIK_TIMEOUT 4          /* the operation's time limit passed */
#define VIK_CANCELLED 5        /* stopped on request */
#define VIK_NOT_FOUND 6        /* the named thing (issue, process) does not exist */

/* A caller-owned buffer for an error message. Writers truncate to `capacity - 1` bytes and
 * always NUL-terminate when capacity > 0. */
typedef struct vik_errbuf {
    char *data;
    size_t capacity;
} vik_errbuf;

/* A caller-owned output channel. The callee calls `write` zero or more times during the
 * call; the caller appends (copies) the bytes. `write` is only valid during the call that
 * received the sink. */
typedef struct vik_sink {
    void *ctx;
    void (*write)(void *ctx, const char *data, size_t len);
} vik_sink;

/* ------------------------------------------------------------------------------------------ */
/* Host services: what the host offers every plugin                                            */
/* ------------------------------------------------------------------------------------------ */

#define VIK_LOG_DEBUG 0
#define VIK_LOG_INFO 1
#define VIK_LOG_WARN 2
#define VIK_LOG_ERROR 3

typedef struct vik_process vik_process; /* opaque; owned by the host */

/* Callbacks for one child process. All run on the host's [process] thread, in order:
 * lines as they arrive, then `on_exit` exactly once, after both streams have closed.
 * Lines longer than the spec's cap are delivered cut to the cap with `truncated` set; the rest
 * of such a line is discarded, so memory stays bounded. The trailing newline is not included. */
typedef struct vik_process_callbacks {
    uint32_t struct_size;
    void *ctx;
    void (*on_stdout_line)(void *ctx, const char *line, size_t len, bool truncated);
    void (*on_stderr_line)(void *ctx, const char *line, size_t len, bool truncated);
    /* exit_code is the exit status, or -1 when the process died of `term_signal` (> 0). */
    void (*on_exit)(void *ctx, int32_t exit_code, int32_t term_signal);
} vik_process_callbacks;

typedef struct vik_process_spec {
    uint32_t struct_size;
    const char *const *argv; /* NULL-terminated; argv[0] is looked up on PATH if it has no '/' */
    const char *const *env;  /* NULL-terminated "KEY=VALUE" list; NULL inherits the host's */
    const char *cwd;         /* NULL: the host's working directory */
    uint32_t max_line_bytes; /* 0: host default (1 MiB) */
    bool pipe_stdin;         /* false: stdin is /dev/null */
} vik_process_spec;

typedef struct vik_host_api {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    void *host_ctx; /* pass back as the first argument of the functions below */

    /* [any] Writes one line into the host log, tagged with the plugin id. */
    void (*log)(void *host_ctx, int32_t level, const char *message);

    /* [any] Writes this plugin's plugin-wide settings (a JSON object, `{}` when none) to `out`. */
    vik_status (*get_settings)(void *host_ctx, const vik_sink *out);

    /* [any] Starts a child in a new process group (its own session leader), with stdout and
     * stderr piped and read line by line. The child is killed (whole group) when the host exits,
     * even by SIGKILL. On success `*out` is a handle the plugin must give back with
     * `process_release`. `callbacks` is copied; its ctx must stay valid until on_exit ran. */
    vik_status (*process_spawn)(void *host_ctx, const vik_process_spec *spec, const vik_process_callbacks *callbacks,
                                vik_process **out, vik_errbuf *err);

    /* [any] Queues bytes for the child's stdin (spawned with pipe_stdin). Never blocks. */
    vik_status (*process_write_stdin)(vik_process *proc, const char *data, size_t len);

    /* [any] Closes stdin once everything queued has been written. Idempotent. */
    vik_status (*process_close_stdin)(vik_process *proc);

    /* [any] Sends `signal` to the child's whole process group. Idempotent after exit. */
    vik_status (*process_kill)(vik_process *proc, int32_t signal);

    /* [worker] Waits until on_exit has run, at most timeout_ms. VIK_TIMEOUT if it has not.
     * Outputs may be NULL. Must not be called from the [process] thread. */
    vik_status (*process_wait)(vik_process *proc, uint32_t timeout_ms, int32_t *exit_code, int32_t *term_signal);

    /* [any] The child's pid (also its process group id). */
    int64_t (*process_pid)(vik_process *proc);

    /* [any] Gives the handle back. A still-running child is killed (group, SIGKILL) first;
     * no callback runs after release returns. */
    void (*process_release)(vik_process *proc);

    /* ABI 1.2 (check with VIK_HOST_HAS_SERVICES): [any] The table of the host service
     * `service_id` (a VIK_SERVICE_* id below), or NULL when this host does not offer it. The
     * table lives as long as this vik_host_api. Services added later get new ids here; this
     * struct does not grow again. */
    const void *(*get_service)(void *host_ctx, const char *service_id);
} vik_host_api;

/* Whether `host` has get_service (a host of ABI 1.2 or later). */
#define VIK_HOST_HAS_SERVICES(host)                                                                                              \
    ((host)->struct_size >= offsetof(vik_host_api, get_service) + sizeof(void *) && (host)->get_service != NULL)

/* ------------------------------------------------------------------------------------------ */
/* Host services found by id (ABI 1.2)                                                         */
/* ------------------------------------------------------------------------------------------ */

/* "vik.host-info/1": facts about the host. */
#define VIK_SERVICE_HOST_INFO_V1 "vik.host-info/1"

typedef struct vik_host_info_v1 {
    uint32_t struct_size;
    const char *host_version; /* vik-host's version, e.g. "0.1.0" */
    const char *plugin_id;    /* the id this host context serves (log lines are tagged with it) */
    /* [any] Whether a log line of `level` reaches the host log (build costly debug text only then). */
    bool (*log_enabled)(void *host_ctx, int32_t level);
} vik_host_info_v1;

/* "vik.json/1": a JSON reader, so a plugin in C needs no JSON library of its own for its
 * settings, issues or hook contexts. A document is parsed once and read by JSON Pointer
 * (RFC 6901: "" is the whole document, "/issues/0/id" a member of an element; "~1" stands for
 * '/' and "~0" for '~' inside a name). Every function is [any] and thread-safe on distinct
 * documents; a document may be read from several threads at once. */
#define VIK_SERVICE_JSON_V1 "vik.json/1"

typedef struct vik_json vik_json; /* a parsed document; owned by whoever parsed it */

#define VIK_JSON_NULL 0
#define VIK_JSON_BOOL 1
#define VIK_JSON_NUMBER 2
#define VIK_JSON_STRING 3
#define VIK_JSON_ARRAY 4
#define VIK_JSON_OBJECT 5

typedef struct vik_json_v1 {
    uint32_t struct_size;
    /* Parses `len` bytes of UTF-8 JSON. On success *out must be given back with `free`. On
     * failure (VIK_INVALID_ARGUMENT) the error buffer names the line and column. */
    vik_status (*parse)(const char *text, size_t len, vik_json **out, vik_errbuf *err);
    void (*free)(vik_json *doc);
    /* The VIK_JSON_* type of the value at `pointer`; VIK_NOT_FOUND when there is none, and
     * VIK_INVALID_ARGUMENT for a malformed pointer. */
    vik_status (*type)(const vik_json *doc, const char *pointer, int32_t *out);
    /* A string's text (unescaped, not NUL-terminated) to `out`. VIK_NOT_FOUND when absent,
     * VIK_INVALID_ARGUMENT when the value is not a string. */
    vik_status (*get_string)(const vik_json *doc, const char *pointer, const vik_sink *out);
    /* An integral number (a number with a fraction or out of range is VIK_INVALID_ARGUMENT). */
    vik_status (*get_int)(const vik_json *doc, const char *pointer, int64_t *out);
    vik_status (*get_bool)(const vik_json *doc, const char *pointer, bool *out);
    /* The number of elements of an array or members of an object. */
    vik_status (*get_size)(const vik_json *doc, const char *pointer, size_t *out);
    /* The name of member `index` (0 .. size-1, in document order) of the object at `pointer`,
     * to walk an object's members. */
    vik_status (*get_key)(const vik_json *doc, const char *pointer, size_t index, const vik_sink *out);
    /* The value at `pointer` as compact JSON text (to pass a part on, e.g. one issue). */
    vik_status (*serialize)(const vik_json *doc, const char *pointer, const vik_sink *out);
    /* Writes `text` as a JSON string literal, quoted and escaped, to `out` (to build JSON). */
    void (*write_string)(const char *text, size_t len, const vik_sink *out);
} vik_json_v1;

/* ------------------------------------------------------------------------------------------ */
/* Interface "vik.tracker/1": where issues come from                                           */
/* ------------------------------------------------------------------------------------------ */

#define VIK_TRACKER_V1 "vik.tracker/1"

/* Issues cross as a JSON array of objects with at least "id", "title", "state" and
 * "description" (strings); any other field is kept and reaches templates as issue.<field>.
 * Optional scheduling fields the host understands: "priority" (int, 1 = highest),
 * "created_at" (RFC 3339), "blocked_by" (array of ids). */
typedef struct vik_tracker_v1 {
    uint32_t struct_size;
    /* [loop] Creates a tracker instance. settings_json is the workflow's tracker section
     * (an object). On failure nothing is created. */
    vik_status (*create)(const vik_host_api *host, const char *settings_json, void **out_instance, vik_errbuf *err);
    /* [loop] Destroys an instance; no call on it is in flight. */
    void (*destroy)(void *instance);
    /* [worker] Writes the current candidate issues (a JSON array) to `out`. */
    vik_status (*pull)(void *instance, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err);
    /* [worker] Writes the issues with the given ids (ids_json: JSON array of strings) to `out`
     * as a JSON array; ids that no longer exist are simply absent. */
    vik_status (*fetch)(void *instance, const char *ids_json, uint32_t timeout_ms, const vik_sink *out, vik_errbuf *err);
    /* [worker] Moves an issue to `state`. */
    vik_status (*set_state)(void *instance, const char *issue_id, const char *state, uint32_t timeout_ms, vik_errbuf *err);
    /* [worker] Adds a comment (UTF-8 text) to an issue. */
    vik_status (*comment)(void *instance, const char *issue_id, const char *body, uint32_t timeout_ms, vik_errbuf *err);
} vik_tracker_v1;

/* ------------------------------------------------------------------------------------------ */
/* Interface "vik.agent-runtime/1": one agent session per stage run                            */
/* ------------------------------------------------------------------------------------------ */

#define VIK_AGENT_RUNTIME_V1 "vik.agent-runtime/1"

#define VIK_SESSION_COMPLETED 0
#define VIK_SESSION_FAILED 1
#define VIK_SESSION_CANCELLED 2

/* The event vocabulary: the "kind" member of every event a session emits (docs/runtimes.md
 * lists each kind's fields). One list for the host and every plugin. */
#define VIK_EVENT_SESSION_STARTED "session_started" /* session_id: the agent's own id */
#define VIK_EVENT_MESSAGE "message"                 /* text */
#define VIK_EVENT_TOKEN_USAGE "token_usage"         /* input, output, cached (totals of one turn) */
#define VIK_EVENT_RATE_LIMIT "rate_limit"           /* whatever the agent reports */
#define VIK_EVENT_TOOL_CALL "tool_call"             /* call_id, name, phase: request | result */
#define VIK_EVENT_SUBAGENT "subagent"               /* call_id, action, status, target_ids */
#define VIK_EVENT_UNKNOWN "unknown"                 /* event_type, raw: a line the mapper does not know */
#define VIK_EVENT_ERROR "error"                     /* detail */
#define VIK_EVENT_COMPLETED "completed"             /* the turn ended well */
#define VIK_EVENT_STDERR "stderr"                   /* line: one line of the agent's stderr */
#define VIK_EVENT_NOTICE "notice"                   /* level, text: a transient condition (a retried stream) */
#define VIK_EVENT_TRUNCATED "truncated"             /* written by the host when a session file reaches its cap */
/* ABI 1.1: the agent stopped because it needs a human: question (text). The run ends as
 * input_required and the issue is parked until an operator answers (`vik-host issue retry`). */
#define VIK_EVENT_INPUT_REQUIRED "input_required"

/* Where a session reports. Both functions are [any] and copy their arguments.
 * `emit` takes one event as a JSON object with a "kind" member from the event vocabulary
 * (session_started, message, token_usage, rate_limit, tool_call, subagent, unknown, error,
 * completed, stderr, notice). `finish` is called exactly once per started session, after the
 * agent process has exited, with a VIK_SESSION_* outcome and a detail text (may be empty);
 * no call to `emit` may follow it. */
typedef struct vik_event_sink {
    void *ctx;
    void (*emit)(void *ctx, const char *event_json, size_t len);
    void (*finish)(void *ctx, int32_t outcome, const char *detail);
} vik_event_sink;

typedef struct vik_session_request {
    uint32_t struct_size;
    const char *session_id;   /* host-assigned UUIDv7 */
    const char *profile_json; /* {"name","runtime","model","args",...,"settings":{...}} */
    const char *prompt;       /* the rendered prompt, written to the agent's stdin */
    size_t prompt_len;
    const char *workdir;    /* the issue workspace; the agent's cwd */
    const char *const *env; /* NULL-terminated "KEY=VALUE" list: the agent's whole environment */
    /* ABI 1.1 (check struct_size): the agent's own conversation id (a session_id it reported in
     * session_started) to continue instead of starting a fresh conversation; NULL or "" for a
     * fresh one. Only given to runtimes whose manifest says `resumes_conversations = true`. */
    const char *resume_conversation;
} vik_session_request;

/* Whether `req` carries the 1.1 field `resume_conversation` with a non-empty id. */
#define VIK_SESSION_RESUMES(req)                                                                                                 \
    ((req)->struct_size >= offsetof(vik_session_request, resume_conversation) + sizeof(const char *) &&                          \
     (req)->resume_conversation != NULL && (req)->resume_conversation[0] != '\0')

typedef struct vik_agent_runtime_v1 {
    uint32_t struct_size;
    /* [loop] settings_json: the plugin-wide settings object. */
    vik_status (*create)(const vik_host_api *host, const char *settings_json, void **out_instance, vik_errbuf *err);
    void (*destroy)(void *instance); /* [loop] every session was released */
    /* [loop] Starts a session without blocking. On VIK_OK, `sink` will receive `finish`
     * exactly once, and *out_session must later be given to `release`. On failure, `finish` is
     * never called. `sink` is copied. */
    vik_status (*start)(void *instance, const vik_session_request *request, const vik_event_sink *sink, void **out_session,
                        vik_errbuf *err);
    /* [any] Asks the session to stop (kills its process group). Idempotent; `finish` follows
     * with VIK_SESSION_CANCELLED unless the session had already ended. */
    vik_status (*cancel)(void *instance, void *session);
    /* [loop] Frees a session after `finish` was delivered. */
    void (*release)(void *instance, void *session);
} vik_agent_runtime_v1;

/* ------------------------------------------------------------------------------------------ */
/* Interface "vik.hooks/1": reactions to lifecycle points                                      */
/* ------------------------------------------------------------------------------------------ */

#define VIK_HOOKS_V1 "vik.hooks/1"

/* Lifecycle event names passed to on_event. */
#define VIK_HOOK_AFTER_CREATE "workspace.after_create"
#define VIK_HOOK_BEFORE_RUN "stage.before_run"
#define VIK_HOOK_AFTER_RUN "stage.after_run"
#define VIK_HOOK_BEFORE_REMOVE "workspace.before_remove"
/* A stage ended and what follows is known (ABI 1.x addition; older hooks plugins ignore unknown
 * events): context.outcome = {"kind": "completed" | "failed" | "blocked", "reason": text}. The
 * shell hooks run issue.hooks.on_completed / on_failed / on_blocked. Its answer changes nothing. */
#define VIK_HOOK_ON_OUTCOME "stage.on_outcome"

typedef struct vik_hooks_v1 {
    uint32_t struct_size;
    vik_status (*create)(const vik_host_api *host, const char *settings_json, void **out_instance, vik_errbuf *err); /* [loop] */
    void (*destroy)(void *instance);                                                                                 /* [loop] */
    /* [worker] Reacts to `event`. context_json holds "hook" (the workflow's short name such as
     * "after_create"), "script" (the workflow's rendered snippet for this point, or null),
     * "workdir", "env" (object), "issue" (object) and "stage" (string or null). A failure of a
     * `before`/`after_create` event vetoes the step; the error buffer says why. */
    vik_status (*on_event)(void *instance, const char *event, const char *context_json, uint32_t timeout_ms, vik_errbuf *err);
} vik_hooks_v1;

/* ------------------------------------------------------------------------------------------ */
/* The entry: the one exported symbol                                                          */
/* ------------------------------------------------------------------------------------------ */

typedef struct vik_entry {
    uint32_t abi_major; /* VIK_ABI_MAJOR the plugin was built against */
    uint32_t abi_minor;
    uint32_t struct_size;    /* sizeof(vik_entry) as the plugin saw it */
    const char *id;          /* must equal the manifest's id */
    const char *version;     /* the plugin's own version, e.g. "0.1.0" */
    const char *description; /* one line */
    /* [any] Returns the static interface table for `interface_id` (e.g. VIK_TRACKER_V1), or
     * NULL when the plugin does not provide it. The table lives as long as the library. */
    const void *(*get_interface)(const char *interface_id);

    /* ABI 1.2 (the host reads them only when struct_size covers them; both may be NULL).
     * [loop] `init` runs once per loaded library: after the host checked it, before the first
     * `create` of any kind. Library-wide set-up (a connection pool, a global library's init)
     * goes here, not in a static constructor. `host` and the services it gives stay valid until
     * `deinit` has returned; its get_settings writes `{}` and it may not spawn processes (they
     * belong to instances). A failure refuses the plugin, with the error buffer's text.
     * [loop] `deinit` runs once, after the last instance was destroyed and before the library is
     * unloaded. Neither runs when the host only reads the manifest (a plugin nothing uses). */
    vik_status (*init)(const vik_host_api *host, vik_errbuf *err);
    void (*deinit)(void);
} vik_entry;

/* The size of a vik_entry of ABI 1.0 and 1.1 (without init and deinit). */
#define VIK_ENTRY_V1_0_SIZE (offsetof(vik_entry, init))

#ifdef __cplusplus
}
#endif

#endif /* VIK_PLUGIN_H */
