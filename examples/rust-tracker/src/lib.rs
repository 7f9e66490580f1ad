//! A vik-host tracker plugin written in Rust, with the standard library only.
//!
//! Walk-through: docs/plugin-sdk-rust.md. Build (Debian's rustc, no cargo, no crates):
//!
//! ```sh
//! /usr/bin/rustc --edition 2021 --crate-type cdylib --crate-name vik_rust_tracker \
//!     -C opt-level=2 -C panic=unwind src/lib.rs -o libvik_rust_tracker.so
//! ```
//!
//! # Design
//!
//! The issues live in a JSON file (the setting `issues_file`, relative to the workflow's
//! directory) that a person or a script writes: an array of objects with "id", "title", "state"
//! and anything else. The plugin never rewrites that file, because rewriting JSON faithfully
//! without a JSON library is where bugs hide. Instead:
//!
//! - `set_state` appends a line `ID<TAB>STATE` to `<issues_file>.states`;
//! - `comment` appends a line `ID<TAB>"BODY"` (the body as a JSON string, so it stays on one
//!   line) to `<issues_file>.comments`;
//! - `pull` and `fetch` answer the issues of the JSON file, each element copied byte for byte
//!   except its "state" value, which becomes the last state logged for its id.
//!
//! Each change is one `write` of one short line to a file opened with O_APPEND, so concurrent
//! writers (the host's worker threads, a `vik-host issue set-state` in another process) neither
//! interleave nor need a lock; a reader ignores a last line without its newline (an append in
//! progress).
//!
//! # Limits (it is an example)
//!
//! - The JSON reader below checks structure (brackets, strings, commas) and decodes strings; it
//!   does not validate numbers or literals. The host parses what `pull` answers and reports any
//!   element it cannot use, so a malformed file is still reported, by the host.
//! - An element that is not an object, or whose "id" is not a string, is passed through as it is
//!   (the host skips it with a warning); it cannot be fetched or changed.
//! - Of duplicate "state" members the first one is replaced.
//! - The `.states` and `.comments` logs only grow; to start over, delete them (or fold the states
//!   into the JSON file by hand and delete `.states`).
//! - Ids and states containing a tab or a line break are refused: they would break the log's
//!   line format.
//! - `timeout_ms` is not used: reading a local file does not block for long.

use std::collections::{HashMap, HashSet};
use std::ffi::{c_void, CStr, CString};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::mem::size_of;
use std::os::raw::c_char;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::ptr;

// ------------------------------------------------------------------------------------------------
// The ABI: #[repr(C)] mirrors of the parts of sdk/include/vik/plugin.h this plugin uses.
//
// Field order and types must match the header exactly; tests/sdk/abi_layout.inc freezes every
// size and offset, and the tests at the end of this file check these mirrors against it.
// Nullable C function pointers are `Option<fn>`: a bare Rust `fn` must never be null, and
// `Option<fn>` has the same size as a pointer, with None as NULL.
// ------------------------------------------------------------------------------------------------

type VikStatus = i32;
const VIK_OK: VikStatus = 0;
const VIK_ERROR: VikStatus = 1;
const VIK_INVALID_ARGUMENT: VikStatus = 3;
const VIK_NOT_FOUND: VikStatus = 6;

const VIK_LOG_DEBUG: i32 = 0;
const VIK_LOG_INFO: i32 = 1;

const VIK_TRACKER_V1: &[u8] = b"vik.tracker/1";

/// `vik_errbuf`: the caller's buffer for an error message.
#[repr(C)]
pub struct VikErrbuf {
    data: *mut c_char,
    capacity: usize,
}

/// `vik_sink`: the caller's output channel; each `write` is copied by the caller.
#[repr(C)]
pub struct VikSink {
    ctx: *mut c_void,
    write: Option<unsafe extern "C" fn(ctx: *mut c_void, data: *const c_char, len: usize)>,
}

/// `vik_host_api`, mirrored only up to `log`, the last field this plugin reads. That is enough
/// because the host creates the table and we only read through a pointer to it; a plugin that
/// spawns processes would mirror the fields up to `process_release`. Never build one of these
/// or rely on its size: it is shorter than the real table.
#[repr(C)]
pub struct VikHostApi {
    struct_size: u32,
    abi_major: u32,
    abi_minor: u32,
    host_ctx: *mut c_void,
    log: Option<unsafe extern "C" fn(host_ctx: *mut c_void, level: i32, message: *const c_char)>,
    // get_settings, process_spawn, ... follow in the header.
}

type CreateFn = unsafe extern "C" fn(
    host: *const VikHostApi,
    settings_json: *const c_char,
    out_instance: *mut *mut c_void,
    err: *mut VikErrbuf,
) -> VikStatus;
type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);
type PullFn = unsafe extern "C" fn(
    instance: *mut c_void,
    timeout_ms: u32,
    out: *const VikSink,
    err: *mut VikErrbuf,
) -> VikStatus;
type FetchFn = unsafe extern "C" fn(
    instance: *mut c_void,
    ids_json: *const c_char,
    timeout_ms: u32,
    out: *const VikSink,
    err: *mut VikErrbuf,
) -> VikStatus;
type SetStateFn = unsafe extern "C" fn(
    instance: *mut c_void,
    issue_id: *const c_char,
    state: *const c_char,
    timeout_ms: u32,
    err: *mut VikErrbuf,
) -> VikStatus;
type CommentFn = unsafe extern "C" fn(
    instance: *mut c_void,
    issue_id: *const c_char,
    body: *const c_char,
    timeout_ms: u32,
    err: *mut VikErrbuf,
) -> VikStatus;

/// `vik_tracker_v1`: the table `get_interface("vik.tracker/1")` returns.
#[repr(C)]
pub struct VikTrackerV1 {
    struct_size: u32,
    create: Option<CreateFn>,
    destroy: Option<DestroyFn>,
    pull: Option<PullFn>,
    fetch: Option<FetchFn>,
    set_state: Option<SetStateFn>,
    comment: Option<CommentFn>,
}

/// `vik_entry`: the one exported symbol.
#[repr(C)]
pub struct VikEntry {
    abi_major: u32,
    abi_minor: u32,
    struct_size: u32,
    id: *const c_char,
    version: *const c_char,
    description: *const c_char,
    get_interface: Option<unsafe extern "C" fn(interface_id: *const c_char) -> *const c_void>,
}

// A static must be Sync, and raw pointers are not. The entry is immutable and its pointers point
// at 'static string literals, so sharing it between threads is sound.
unsafe impl Sync for VikEntry {}

// Sizes the header freezes (LP64), checked at compile time so a wrong mirror does not build.
// The field offsets are checked by the tests at the end (offset_of! is newer than rustc 1.63).
const _: () = assert!(size_of::<VikErrbuf>() == 16);
const _: () = assert!(size_of::<VikSink>() == 16);
const _: () = assert!(size_of::<VikTrackerV1>() == 56);
const _: () = assert!(size_of::<VikEntry>() == 48);

/// A NUL-terminated 'static string for the entry; Rust 1.63 has no `c"..."` literals.
macro_rules! c_str {
    ($s:literal) => {
        concat!($s, "\0").as_ptr() as *const c_char
    };
}

#[no_mangle]
#[allow(non_upper_case_globals)] // the host looks the symbol up by this exact name
pub static vik_plugin_entry: VikEntry = VikEntry {
    abi_major: 1,
    // 1.1 is the header this mirror follows; the plugin needs nothing 1.1 added, so it loads
    // into any 1.x host (the minor rule in docs/plugin-sdk.md).
    abi_minor: 1,
    struct_size: size_of::<VikEntry>() as u32,
    id: c_str!("rust-tracker"), // must equal the manifest's id
    version: c_str!("0.1.0"),
    description: c_str!("issues in a JSON file, state changes in a log beside it (Rust)"),
    get_interface: Some(get_interface),
};

static TRACKER_V1: VikTrackerV1 = VikTrackerV1 {
    struct_size: size_of::<VikTrackerV1>() as u32,
    create: Some(tracker_create),
    destroy: Some(tracker_destroy),
    pull: Some(tracker_pull),
    fetch: Some(tracker_fetch),
    set_state: Some(tracker_set_state),
    comment: Some(tracker_comment),
};

unsafe extern "C" fn get_interface(interface_id: *const c_char) -> *const c_void {
    // Nothing here should panic, but an unwind out of an extern "C" function is undefined
    // behaviour in this Rust version (later ones abort), so every entry point is guarded.
    panic::catch_unwind(|| {
        if !interface_id.is_null() && CStr::from_ptr(interface_id).to_bytes() == VIK_TRACKER_V1 {
            &TRACKER_V1 as *const VikTrackerV1 as *const c_void
        } else {
            ptr::null()
        }
    })
    .unwrap_or(ptr::null())
}

// ------------------------------------------------------------------------------------------------
// Errors, panics, strings and sinks at the boundary.
// ------------------------------------------------------------------------------------------------

/// A failed call: the status it returns and the message the operator reads.
#[derive(Debug)]
struct Failure {
    status: VikStatus,
    message: String,
}

impl Failure {
    fn error(message: impl Into<String>) -> Self {
        Failure {
            status: VIK_ERROR,
            message: message.into(),
        }
    }
    fn invalid(message: impl Into<String>) -> Self {
        Failure {
            status: VIK_INVALID_ARGUMENT,
            message: message.into(),
        }
    }
    fn not_found(message: impl Into<String>) -> Self {
        Failure {
            status: VIK_NOT_FOUND,
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// Runs an entry point's body: its error, or a panic, becomes a status and a message in `err`.
///
/// AssertUnwindSafe is sound here because a body only reads the instance (its paths) and the
/// files; a panic leaves nothing half-updated that a later call could observe.
///
/// # Safety
/// `err` is NULL or a valid errbuf (see `write_error`).
unsafe fn guarded(err: *mut VikErrbuf, body: impl FnOnce() -> Result<()>) -> VikStatus {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => VIK_OK,
        Ok(Err(failure)) => {
            write_error(err, &failure.message);
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic without a message");
            write_error(
                err,
                &format!(
                    "rust-tracker: internal error (a bug, please report it): {}",
                    what
                ),
            );
            VIK_ERROR
        }
    }
}

/// Copies `message` into the caller's buffer: truncated to `capacity - 1` bytes (at a character
/// boundary, so the text stays UTF-8) and always NUL-terminated.
///
/// # Safety
/// `err` is NULL or points to an errbuf whose `data` holds `capacity` writable bytes.
unsafe fn write_error(err: *mut VikErrbuf, message: &str) {
    let buf = match err.as_ref() {
        Some(buf) if !buf.data.is_null() && buf.capacity > 0 => buf,
        _ => return,
    };
    let mut len = message.len().min(buf.capacity - 1);
    while !message.is_char_boundary(len) {
        len -= 1;
    }
    ptr::copy_nonoverlapping(message.as_ptr(), buf.data as *mut u8, len);
    *buf.data.add(len) = 0;
}

/// Borrows a C string argument as UTF-8; `name` says which argument is wrong.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives `'a` (the call, for host arguments).
unsafe fn c_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{} is NULL", name)));
    }
    CStr::from_ptr(p)
        .to_str()
        .map_err(|_| Failure::invalid(format!("{} is not UTF-8", name)))
}

/// The caller's sink: each `write` appends a copy, so an answer may go in several pieces.
struct Sink<'a>(&'a VikSink);

impl<'a> Sink<'a> {
    /// # Safety
    /// `p` is NULL or a sink valid for the current call.
    unsafe fn new(p: *const VikSink) -> Result<Self> {
        match p.as_ref() {
            Some(sink) if sink.write.is_some() => Ok(Sink(sink)),
            _ => Err(Failure::invalid("the output sink is NULL")),
        }
    }

    fn write(&self, bytes: &[u8]) {
        if let Some(write) = self.0.write {
            // SAFETY: the sink is valid for the call that received it; the caller copies.
            unsafe { write(self.0.ctx, bytes.as_ptr() as *const c_char, bytes.len()) }
        }
    }
}

/// The instance behind the `void *` the host holds.
///
/// The host may run `pull`, `fetch`, `set_state` and `comment` on one instance from several
/// worker threads at once: everything here is read-only after `create`, and `log` is [any].
struct Tracker {
    host: *const VikHostApi,
    issues: PathBuf,
    states: PathBuf,
    comments: PathBuf,
}

/// # Safety
/// `instance` is NULL or a pointer `tracker_create` returned and `tracker_destroy` has not freed.
unsafe fn instance<'a>(instance: *mut c_void) -> Result<&'a Tracker> {
    (instance as *const Tracker)
        .as_ref()
        .ok_or_else(|| Failure::invalid("the tracker instance is NULL"))
}

// ------------------------------------------------------------------------------------------------
// The entry points of vik.tracker/1.
// ------------------------------------------------------------------------------------------------

unsafe extern "C" fn tracker_create(
    host: *const VikHostApi,
    settings_json: *const c_char,
    out_instance: *mut *mut c_void,
    err: *mut VikErrbuf,
) -> VikStatus {
    guarded(err, || {
        if out_instance.is_null() {
            return Err(Failure::invalid("out_instance is NULL"));
        }
        let tracker = Tracker::from_settings(host, c_arg(settings_json, "settings_json")?)?;
        tracker.log(
            VIK_LOG_INFO,
            &format!("serving issues from {}", tracker.issues.display()),
        );
        // Ownership goes to the host until it calls destroy; nothing is created on failure.
        *out_instance = Box::into_raw(Box::new(tracker)) as *mut c_void;
        Ok(())
    })
}

unsafe extern "C" fn tracker_destroy(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // Dropping paths does not panic, but the rule holds for every entry point; there is no
    // error buffer to report into, so the result is dropped.
    let _ = panic::catch_unwind(|| drop(Box::from_raw(instance as *mut Tracker)));
}

unsafe extern "C" fn tracker_pull(
    instance_ptr: *mut c_void,
    _timeout_ms: u32,
    out: *const VikSink,
    err: *mut VikErrbuf,
) -> VikStatus {
    guarded(err, || {
        let tracker = instance(instance_ptr)?;
        let sink = Sink::new(out)?;
        let issues = tracker.load()?;
        tracker.log(VIK_LOG_DEBUG, &format!("pull: {} issue(s)", issues.len()));
        write_array(&sink, issues.iter());
        Ok(())
    })
}

unsafe extern "C" fn tracker_fetch(
    instance_ptr: *mut c_void,
    ids_json: *const c_char,
    _timeout_ms: u32,
    out: *const VikSink,
    err: *mut VikErrbuf,
) -> VikStatus {
    guarded(err, || {
        let tracker = instance(instance_ptr)?;
        let sink = Sink::new(out)?;
        let ids = parse_ids(c_arg(ids_json, "ids_json")?)?;
        let issues = tracker.load()?;
        // Ids that no longer exist are simply absent from the answer (the header's contract).
        let found: Vec<&Issue> = issues
            .iter()
            .filter(|i| i.id.as_ref().map_or(false, |id| ids.contains(id)))
            .collect();
        tracker.log(
            VIK_LOG_DEBUG,
            &format!("fetch: {} of {} asked", found.len(), ids.len()),
        );
        write_array(&sink, found.into_iter());
        Ok(())
    })
}

unsafe extern "C" fn tracker_set_state(
    instance_ptr: *mut c_void,
    issue_id: *const c_char,
    state: *const c_char,
    _timeout_ms: u32,
    err: *mut VikErrbuf,
) -> VikStatus {
    guarded(err, || {
        let tracker = instance(instance_ptr)?;
        let id = log_field(c_arg(issue_id, "issue_id")?, "issue id")?;
        let state = log_field(c_arg(state, "state")?, "state")?;
        tracker.require_issue(id)?;
        append_line(&tracker.states, &format!("{}\t{}\n", id, state))?;
        tracker.log(VIK_LOG_DEBUG, &format!("set_state: {} -> {}", id, state));
        Ok(())
    })
}

unsafe extern "C" fn tracker_comment(
    instance_ptr: *mut c_void,
    issue_id: *const c_char,
    body: *const c_char,
    _timeout_ms: u32,
    err: *mut VikErrbuf,
) -> VikStatus {
    guarded(err, || {
        let tracker = instance(instance_ptr)?;
        let id = log_field(c_arg(issue_id, "issue_id")?, "issue id")?;
        let body = c_arg(body, "body")?;
        tracker.require_issue(id)?;
        append_line(
            &tracker.comments,
            &format!("{}\t{}\n", id, json::quote(body)),
        )
    })
}

// ------------------------------------------------------------------------------------------------
// The tracker itself: plain Rust, but for the host's log.
// ------------------------------------------------------------------------------------------------

/// One element of the issues array, as it will be answered.
struct Issue {
    id: Option<String>,
    json: String,
}

impl Tracker {
    fn from_settings(host: *const VikHostApi, settings_json: &str) -> Result<Self> {
        let settings = json::object_members(settings_json)
            .map_err(|e| Failure::invalid(format!("the settings are not a JSON object: {}", e)))?;
        let setting = |name: &str| -> Result<Option<String>> {
            match settings.iter().find(|m| m.key == name) {
                None => Ok(None),
                Some(m) => json::decode_string(&settings_json[m.value.clone()])
                    .map(Some)
                    .map_err(|_| Failure::invalid(format!("setting '{}' must be a string", name))),
            }
        };
        let file = setting("issues_file")?.filter(|f| !f.is_empty()).ok_or_else(|| {
            Failure::invalid("setting 'issues_file' (the JSON file of issues, relative to the workflow's directory) is required")
        })?;
        // The host adds workflow_dir to every tracker's settings; `plugin check` may not.
        let dir = setting("workflow_dir")?.unwrap_or_else(|| ".".to_string());
        // Joining an absolute path yields it unchanged, so issues_file may also be absolute.
        let issues = Path::new(&dir).join(file);
        let beside = |suffix: &str| {
            let mut p = issues.clone().into_os_string();
            p.push(suffix);
            PathBuf::from(p)
        };
        Ok(Tracker {
            host,
            states: beside(".states"),
            comments: beside(".comments"),
            issues,
        })
    }

    /// Writes a line into the host log (tagged with the plugin id and the call).
    fn log(&self, level: i32, message: &str) {
        // SAFETY: `host` is NULL or the table `create` received. Unlike other arguments, the host
        // keeps that table alive until the instance is destroyed (plugins call its process
        // service long after `create`), so keeping the pointer is sound.
        let host = match unsafe { self.host.as_ref() } {
            Some(host) => host,
            None => return,
        };
        if let (Some(log), Ok(text)) = (host.log, CString::new(message.replace('\0', "\\0"))) {
            unsafe { log(host.host_ctx, level, text.as_ptr()) }
        }
    }

    /// The issues of the JSON file with the logged states applied.
    fn load(&self) -> Result<Vec<Issue>> {
        let text = fs::read_to_string(&self.issues)
            .map_err(|e| Failure::error(format!("cannot read {}: {}", self.issues.display(), e)))?;
        let elements = json::array_elements(&text).map_err(|e| {
            Failure::error(format!(
                "{} is not a JSON array of issues: {}",
                self.issues.display(),
                e
            ))
        })?;
        let states = self.logged_states()?;
        Ok(elements
            .into_iter()
            .map(|element| apply_state(element, &states))
            .collect())
    }

    /// The last state logged for each id.
    fn logged_states(&self) -> Result<HashMap<String, String>> {
        let text = match fs::read_to_string(&self.states) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
            Err(e) => {
                return Err(Failure::error(format!(
                    "cannot read {}: {}",
                    self.states.display(),
                    e
                )))
            }
        };
        // A line without its newline is an append in progress: not there yet.
        let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        let mut states = HashMap::new();
        for (n, line) in complete.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            let (id, state) = line.split_once('\t').ok_or_else(|| {
                Failure::error(format!(
                    "{}:{}: expected ID<TAB>STATE, found {:?}",
                    self.states.display(),
                    n + 1,
                    line
                ))
            })?;
            states.insert(id.to_string(), state.to_string());
        }
        Ok(states)
    }

    /// Refuses a change to an issue the file does not have, as a real tracker would.
    fn require_issue(&self, id: &str) -> Result<()> {
        if self.load()?.iter().any(|i| i.id.as_deref() == Some(id)) {
            Ok(())
        } else {
            Err(Failure::not_found(format!(
                "no issue '{}' in {}",
                id,
                self.issues.display()
            )))
        }
    }
}

/// One element, its "state" replaced by the logged one (added when it has none).
fn apply_state(element: &str, states: &HashMap<String, String>) -> Issue {
    // Not an object, or no string id: passed through for the host to judge and report.
    let members = match json::object_members(element) {
        Ok(members) => members,
        Err(_) => {
            return Issue {
                id: None,
                json: element.to_string(),
            }
        }
    };
    let id = members
        .iter()
        .find(|m| m.key == "id")
        .and_then(|m| json::decode_string(&element[m.value.clone()]).ok());
    let logged = id.as_ref().and_then(|id| states.get(id));
    let json = match (logged, members.iter().find(|m| m.key == "state")) {
        (None, _) => element.to_string(),
        (Some(state), Some(m)) => {
            format!(
                "{}{}{}",
                &element[..m.value.start],
                json::quote(state),
                &element[m.value.end..]
            )
        }
        // An object without "state": the new member goes first, right after the brace.
        (Some(state), None) => {
            let rest = &element[1..];
            let comma = if members.is_empty() { "" } else { "," };
            format!("{{\"state\":{}{}{}", json::quote(state), comma, rest)
        }
    };
    Issue { id, json }
}

/// Writes `[a,b,...]` into the sink. All fallible work is done before: a failed call writes
/// nothing.
fn write_array<'a>(sink: &Sink, issues: impl Iterator<Item = &'a Issue>) {
    sink.write(b"[");
    for (n, issue) in issues.enumerate() {
        if n > 0 {
            sink.write(b",");
        }
        sink.write(issue.json.as_bytes());
    }
    sink.write(b"]");
}

/// The ids of a fetch: a JSON array of strings.
fn parse_ids(ids_json: &str) -> Result<HashSet<String>> {
    let bad =
        |e: String| Failure::invalid(format!("ids_json must be a JSON array of strings: {}", e));
    json::array_elements(ids_json)
        .map_err(bad)?
        .into_iter()
        .map(|element| json::decode_string(element).map_err(bad))
        .collect()
}

/// A value that goes into a log line, where a tab or a line break would change its meaning.
fn log_field<'a>(value: &'a str, what: &str) -> Result<&'a str> {
    if value.is_empty() || value.contains(|c| matches!(c, '\t' | '\n' | '\r')) {
        return Err(Failure::invalid(format!(
            "the {} must be non-empty, without tabs or line breaks: {:?}",
            what, value
        )));
    }
    Ok(value)
}

/// Appends one whole line with one write(2) on an O_APPEND file: concurrent appends of short
/// lines do not interleave on a local file system.
fn append_line(path: &Path, line: &str) -> Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| Failure::error(format!("cannot append to {}: {}", path.display(), e)))
}

// ------------------------------------------------------------------------------------------------
// Just enough JSON: split arrays and objects into byte ranges, decode and encode strings.
// ------------------------------------------------------------------------------------------------

mod json {
    use std::ops::Range;

    /// Nesting deeper than this is refused rather than risking the stack (a stack overflow
    /// aborts the host; it is not a panic that catch_unwind could stop).
    const MAX_DEPTH: usize = 64;

    /// A member of an object: its decoded key and the byte range of its value.
    pub struct Member {
        pub key: String,
        pub value: Range<usize>,
    }

    struct Scanner<'a> {
        text: &'a [u8],
        pos: usize,
    }

    impl<'a> Scanner<'a> {
        fn new(text: &'a str) -> Self {
            Scanner {
                text: text.as_bytes(),
                pos: 0,
            }
        }

        fn skip_space(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.pos += 1;
            }
        }

        fn peek(&self) -> Option<u8> {
            self.text.get(self.pos).copied()
        }

        fn fail<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("{} at byte {}", what, self.pos))
        }

        fn expect(&mut self, byte: u8) -> Result<(), String> {
            self.skip_space();
            if self.peek() == Some(byte) {
                self.pos += 1;
                Ok(())
            } else {
                self.fail(&format!("expected '{}'", byte as char))
            }
        }

        /// Skips whitespace, then one value; returns the value's range.
        fn value(&mut self, depth: usize) -> Result<Range<usize>, String> {
            self.skip_space();
            let start = self.pos;
            match self.peek() {
                Some(b'"') => self.string()?,
                Some(b'[') if depth < MAX_DEPTH => {
                    self.pos += 1;
                    self.sequence(b']', |s| s.value(depth + 1).map(drop))?
                }
                Some(b'{') if depth < MAX_DEPTH => {
                    self.pos += 1;
                    self.sequence(b'}', |s| s.member(depth + 1).map(drop))?
                }
                Some(b'[' | b'{') => return self.fail("nested too deeply"),
                // true, false, null, numbers: their characters; the host validates them.
                _ => {
                    while matches!(
                        self.peek(),
                        Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'+' | b'-' | b'.')
                    ) {
                        self.pos += 1;
                    }
                    if self.pos == start {
                        return self.fail("expected a value");
                    }
                }
            }
            Ok(start..self.pos)
        }

        /// Skips a string, the opening quote at `pos`.
        fn string(&mut self) -> Result<(), String> {
            self.expect(b'"')?;
            loop {
                match self.peek() {
                    None => return self.fail("unterminated string"),
                    Some(b'"') => {
                        self.pos += 1;
                        return Ok(());
                    }
                    Some(b'\\') => self.pos += 2,
                    Some(_) => self.pos += 1,
                }
            }
        }

        /// `"key": value`; returns the member with its key decoded.
        fn member(&mut self, depth: usize) -> Result<Member, String> {
            self.skip_space();
            let start = self.pos;
            self.string()?;
            let key = std::str::from_utf8(&self.text[start..self.pos])
                .map_err(|e| e.to_string())
                .and_then(decode_string)?;
            self.expect(b':')?;
            Ok(Member {
                key,
                value: self.value(depth)?,
            })
        }

        /// The items after an opening bracket, separated by commas, up to `close`.
        fn sequence(
            &mut self,
            close: u8,
            mut item: impl FnMut(&mut Self) -> Result<(), String>,
        ) -> Result<(), String> {
            self.skip_space();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(());
            }
            loop {
                item(self)?;
                self.skip_space();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(c) if c == close => {
                        self.pos += 1;
                        return Ok(());
                    }
                    _ => return self.fail(&format!("expected ',' or '{}'", close as char)),
                }
            }
        }

        fn end(&mut self) -> Result<(), String> {
            self.skip_space();
            if self.pos == self.text.len() {
                Ok(())
            } else {
                self.fail("unexpected text after the value")
            }
        }
    }

    /// The elements of a top-level array, each as its exact text.
    pub fn array_elements(text: &str) -> Result<Vec<&str>, String> {
        let mut s = Scanner::new(text);
        let mut ranges = Vec::new();
        s.expect(b'[')?;
        s.sequence(b']', |s| s.value(1).map(|r| ranges.push(r)))?;
        s.end()?;
        // The ranges start and end at ASCII bytes, so slicing cannot split a character.
        Ok(ranges.into_iter().map(|r| &text[r]).collect())
    }

    /// The members of a top-level object, value ranges relative to `text`.
    pub fn object_members(text: &str) -> Result<Vec<Member>, String> {
        let mut s = Scanner::new(text);
        let mut members = Vec::new();
        s.expect(b'{')?;
        s.sequence(b'}', |s| s.member(1).map(|m| members.push(m)))?;
        s.end()?;
        Ok(members)
    }

    /// The text of a JSON string literal (quotes included), escapes resolved.
    pub fn decode_string(literal: &str) -> Result<String, String> {
        let inner = literal
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .ok_or_else(|| format!("expected a string, found {}", literal))?;
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let unescaped = match chars.next() {
                Some('"') => '"',
                Some('\\') => '\\',
                Some('/') => '/',
                Some('b') => '\u{8}',
                Some('f') => '\u{c}',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('t') => '\t',
                Some('u') => {
                    let high = hex4(&mut chars)?;
                    // Outside the basic plane, JSON spells a character as a UTF-16 surrogate pair.
                    let code = if (0xD800..0xDC00).contains(&high) {
                        let low = match (chars.next(), chars.next()) {
                            (Some('\\'), Some('u')) => hex4(&mut chars)?,
                            _ => return Err("a lone UTF-16 surrogate in a string".to_string()),
                        };
                        if !(0xDC00..0xE000).contains(&low) {
                            return Err("a lone UTF-16 surrogate in a string".to_string());
                        }
                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        high
                    };
                    char::from_u32(code)
                        .ok_or_else(|| "a lone UTF-16 surrogate in a string".to_string())?
                }
                _ => return Err("an invalid escape in a string".to_string()),
            };
            out.push(unescaped);
        }
        Ok(out)
    }

    fn hex4(chars: &mut std::str::Chars) -> Result<u32, String> {
        let digits: String = chars.take(4).collect();
        // from_str_radix alone would also take a sign ("+abc").
        let hex = digits.len() == 4 && digits.chars().all(|c| c.is_ascii_hexdigit());
        match u32::from_str_radix(&digits, 16) {
            Ok(code) if hex => Ok(code),
            _ => Err(format!("an invalid \\u escape: \\u{}", digits)),
        }
    }

    /// `text` as a JSON string literal.
    pub fn quote(text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('"');
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

// ------------------------------------------------------------------------------------------------
// Tests: `rustc --edition 2021 --test src/lib.rs -o lib-tests && ./lib-tests` (from this folder;
// the layout test reads the tree's tests/sdk/abi_layout.inc).
// ------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;

    /// The frozen layout of `name` from tests/sdk/abi_layout.inc: its size and its fields'
    /// offsets, in header order.
    fn frozen(name: &str) -> (usize, Vec<(String, usize)>) {
        let layout = include_str!("../../../tests/sdk/abi_layout.inc");
        let args = |line: &str, macro_name: &str| -> Option<Vec<String>> {
            let inner = line
                .strip_prefix(macro_name)?
                .strip_prefix('(')?
                .strip_suffix(')')?;
            let args: Vec<String> = inner.split(", ").map(str::to_string).collect();
            (args[0] == name).then(|| args)
        };
        let size = layout
            .lines()
            .find_map(|l| args(l, "VIK_SIZE"))
            .map(|a| a[1].parse().unwrap());
        let fields = layout
            .lines()
            .filter_map(|l| args(l, "VIK_FIELD"))
            .map(|a| (a[1].clone(), a[2].parse().unwrap()));
        (
            size.unwrap_or_else(|| panic!("{} is not in abi_layout.inc", name)),
            fields.collect(),
        )
    }

    /// Checks a mirror against the frozen layout: each field at its frozen offset, and no frozen
    /// field missing below the mirror's end. A mirror may stop early (a prefix, for structs the
    /// host owns and that grow at the end); `whole` says it must cover the struct exactly.
    fn check(name: &str, size: usize, mirrored: &[(&str, usize)], whole: bool) {
        let (frozen_size, frozen_fields) = frozen(name);
        for &(field, offset) in mirrored {
            let frozen = frozen_fields
                .iter()
                .find(|(f, _)| f == field)
                .map(|&(_, o)| o);
            assert_eq!(
                Some(offset),
                frozen,
                "{}.{}: mirror offset vs frozen",
                name,
                field
            );
        }
        for (field, offset) in frozen_fields.iter().filter(|(_, o)| *o < size) {
            assert!(
                mirrored.iter().any(|(f, _)| f == field),
                "{}.{} (at {}) is missing from the mirror",
                name,
                field,
                offset
            );
        }
        assert!(
            size <= frozen_size,
            "{}: the mirror ({} bytes) is larger than the struct ({})",
            name,
            size,
            frozen_size
        );
        if whole {
            assert_eq!(size, frozen_size, "{}: mirror size vs frozen", name);
        }
    }

    /// offset_of! for rustc 1.63: field offsets taken from an uninitialised value.
    macro_rules! offsets {
        ($t:ty: $($field:ident),+) => {{
            let value = MaybeUninit::<$t>::uninit();
            let base = value.as_ptr();
            // SAFETY: addr_of! computes an address without reading the (uninitialised) value.
            vec![$((stringify!($field), unsafe { ptr::addr_of!((*base).$field) as usize - base as usize })),+]
        }};
    }

    #[test]
    fn mirrors_match_the_frozen_abi_layout() {
        check(
            "vik_errbuf",
            size_of::<VikErrbuf>(),
            &offsets!(VikErrbuf: data, capacity),
            true,
        );
        check(
            "vik_sink",
            size_of::<VikSink>(),
            &offsets!(VikSink: ctx, write),
            true,
        );
        // A published interface table never changes: the mirror is all of it.
        let tracker =
            offsets!(VikTrackerV1: struct_size, create, destroy, pull, fetch, set_state, comment);
        check("vik_tracker_v1", size_of::<VikTrackerV1>(), &tracker, true);
        // The host's table, read through a pointer: a prefix up to `log` is enough.
        let host = offsets!(VikHostApi: struct_size, abi_major, abi_minor, host_ctx, log);
        check("vik_host_api", size_of::<VikHostApi>(), &host, false);
        // The entry as of ABI 1.1; a later minor may add fields after it, which our struct_size
        // tells the host we do not have.
        let entry = offsets!(VikEntry: abi_major, abi_minor, struct_size, id, version, description, get_interface);
        check("vik_entry", size_of::<VikEntry>(), &entry, false);
    }

    #[test]
    fn a_panic_becomes_an_error_status_with_its_message() {
        let mut data = [0x55 as c_char; 64];
        let mut err = VikErrbuf {
            data: data.as_mut_ptr(),
            capacity: data.len(),
        };
        let status = unsafe { guarded(&mut err, || panic!("boom {}", 42)) };
        assert_eq!(status, VIK_ERROR);
        let text = unsafe { CStr::from_ptr(data.as_ptr()) }.to_str().unwrap();
        assert!(text.ends_with("please report it): boom 42"), "{}", text);
    }

    #[test]
    fn errors_are_truncated_at_a_character_boundary_and_terminated() {
        let mut data = [0x55 as c_char; 5];
        let mut err = VikErrbuf {
            data: data.as_mut_ptr(),
            capacity: data.len(),
        };
        assert_eq!(
            unsafe { guarded(&mut err, || Err(Failure::not_found("abcé"))) },
            VIK_NOT_FOUND
        );
        // "abcé" is 5 bytes; 4 fit, but the fourth would split the é.
        assert_eq!(unsafe { CStr::from_ptr(data.as_ptr()) }.to_bytes(), b"abc");
        assert_eq!(
            unsafe { guarded(ptr::null_mut(), || Err(Failure::error("no buffer"))) },
            VIK_ERROR
        );
    }

    #[test]
    fn the_interface_is_found_by_its_id() {
        let table = unsafe { get_interface(c_str!("vik.tracker/1")) };
        assert_eq!(table, &TRACKER_V1 as *const VikTrackerV1 as *const c_void);
        assert!(unsafe { get_interface(c_str!("vik.hooks/1")) }.is_null());
        assert!(unsafe { get_interface(ptr::null()) }.is_null());
    }

    #[test]
    fn elements_and_members_keep_their_exact_text() {
        let text = r#" [ {"id": "A-1", "t": [1, {"x": "]"}], "s": "a\"b"} , 7, "x" ] "#;
        let elements = json::array_elements(text).unwrap();
        assert_eq!(
            elements,
            vec![
                r#"{"id": "A-1", "t": [1, {"x": "]"}], "s": "a\"b"}"#,
                "7",
                r#""x""#
            ]
        );
        let members = json::object_members(elements[0]).unwrap();
        let keys: Vec<&str> = members.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["id", "t", "s"]);
        assert_eq!(&elements[0][members[2].value.clone()], r#""a\"b""#);
        assert!(json::array_elements("[1,]").is_err());
        assert!(json::array_elements("[1] x").is_err());
        assert!(json::array_elements(&"[".repeat(100)).is_err());
    }

    #[test]
    fn strings_decode_and_quote() {
        assert_eq!(
            json::decode_string(r#""a\n\"\u00e9\ud83d\ude00""#).unwrap(),
            "a\n\"é😀"
        );
        assert!(json::decode_string(r#""\ud83d""#).is_err());
        assert!(json::decode_string(r#""\x""#).is_err());
        assert!(json::decode_string(r#""\u+abc""#).is_err());
        assert_eq!(json::quote("t\"ab\t\u{1}é"), r#""t\"ab\t\u0001é""#);
    }

    #[test]
    fn the_logged_state_replaces_or_adds_the_state_member() {
        let states: HashMap<String, String> = [("A-1".to_string(), "done".to_string())]
            .into_iter()
            .collect();
        let replaced = apply_state(r#"{"id":"A-1", "state" : "todo","x":1}"#, &states);
        assert_eq!(replaced.json, r#"{"id":"A-1", "state" : "done","x":1}"#);
        let added = apply_state(r#"{"id":"A-1"}"#, &states);
        assert_eq!(added.json, r#"{"state":"done","id":"A-1"}"#);
        let other = apply_state(r#"{"id":"B-1","state":"todo"}"#, &states);
        assert_eq!(other.json, r#"{"id":"B-1","state":"todo"}"#);
        assert!(apply_state("42", &states).id.is_none());
    }
}
