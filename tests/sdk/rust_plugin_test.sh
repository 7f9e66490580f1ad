#!/usr/bin/env bash
# The Rust tracker example (examples/rust-tracker, docs/plugin-sdk-rust.md) as its author builds
# and checks it: compiled with Debian's rustc (no cargo, no crates) into a cdylib, its unit tests
# (the repr(C) mirrors against tests/sdk/abi_layout.inc, panics, the JSON scanner) run, its
# exports checked, then the built host loads it beside the built-ins: plugin check, doctor,
# tracker pull, tracker fetch, issue set-state and comment, and a run in which one issue goes
# from todo to done (a continuation asks the plugin's fetch first).
# Usage: rust_plugin_test.sh BUILD_DIR    (exit 77: skipped, Debian's rustc is not installed)
set -euo pipefail
build=$1
# Debian's package, not a rustup toolchain that may come first on PATH.
rustc=/usr/bin/rustc
if [ ! -x "$rustc" ]; then
  echo "SKIP: Debian's rustc is not installed (apt-get install rustc)"
  exit 77
fi
src=$(cd "$(dirname "$0")/../../examples/rust-tracker" && pwd)
host=$build/bin/vik-host
fail() { echo "FAILED: $*" >&2; exit 1; }
[ -x "$host" ] || fail "no vik-host at $host (build the tree first)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
plugins=$scratch/plugins
wf=$scratch/wf
mkdir -p "$plugins" "$wf"
"$rustc" --version

# 1. Build: a cdylib exports only #[no_mangle] items. -D warnings keeps the example clean.
"$rustc" --edition 2021 --crate-type cdylib --crate-name vik_rust_tracker -C opt-level=2 -C panic=unwind \
  -D warnings "$src/src/lib.rs" -o "$plugins/libvik_rust_tracker.so" || fail "rustc could not build the plugin"
cp "$src/vik-rust-tracker.toml" "$plugins/"
syms=$(nm -D --defined-only "$plugins/libvik_rust_tracker.so" | awk '{print $3}')
[ "$syms" = "vik_plugin_entry" ] || fail "the plugin exports more than vik_plugin_entry: ${syms//$'\n'/ }"

# 2. Its unit tests, built by the same rustc (the layout test reads tests/sdk/abi_layout.inc).
"$rustc" --edition 2021 --test -C panic=unwind -D warnings "$src/src/lib.rs" -o "$scratch/lib-tests" ||
  fail "rustc could not build the unit tests"
out=$("$scratch/lib-tests" 2>&1) || fail "unit tests failed: $out"
echo "$out" | grep -q "test tests::mirrors_match_the_frozen_abi_layout ... ok" || fail "no layout test ran: $out"
echo "$out" | grep -q "test result: ok. 7 passed; 0 failed" || fail "unexpected unit test result: $out"

# 3. plugin check: loads as the host does; without its required setting, create refuses it.
out=$("$host" --plugins "$plugins" plugin check "$plugins/vik-rust-tracker.toml" 2>&1) &&
  fail "plugin check without settings passed: $out"
echo "$out" | grep -qF "ok: rust-tracker 0.1.0 (tracker) loads from $plugins/libvik_rust_tracker.so" ||
  fail "plugin check did not load the library: $out"
echo "$out" | grep -qF "problem: rust-tracker: create(tracker) refused: invalid_argument: setting 'issues_file' (the JSON file of issues, relative to the workflow's directory) is required" ||
  fail "create did not refuse the missing setting with its message: $out"
out=$("$host" --plugins "$plugins" plugin check "$plugins/vik-rust-tracker.toml" \
  --settings "{\"issues_file\": \"issues.json\", \"workflow_dir\": \"$wf\"}" 2>&1) || fail "plugin check failed: $out"
echo "$out" | grep -qF "serving issues from $wf/issues.json" || fail "create did not log through the host: $out"
echo "$out" | grep -qx "no problems found" || fail "plugin check found problems: $out"

# 4. A workflow on it. The stand-in agent's first turn leaves its issue in todo, so the host
# continues the stage, asking the plugin's fetch whether the issue is still eligible; the
# continuation moves the issue to done through vik-host, which calls the plugin's set_state.
cat > "$wf/issues.json" <<'JSON'
[
  {"id": "R-1", "title": "Say \"hello\" from Rust", "state": "todo", "description": "caf\u00e9 \u2615", "priority": 1},
  {"id": "R-2", "title": "Not yet", "state": "backlog", "description": ""}
]
JSON
cp "$wf/issues.json" "$scratch/issues.orig.json"
cat > "$wf/agent.sh" <<'SH'
#!/bin/sh
prompt=$(cat)
case $prompt in
  *"(attempt 1)"*) ;;
  *) "$VIK_HOST_BIN" issue set-state "$VIK_ISSUE_ID" done >/dev/null || exit 1 ;;
esac
echo '{"kind":"completed"}'
SH
chmod +x "$wf/agent.sh"
cat > "$wf/workflow.yml" <<YML
loop: {max_iterations: 8}  # margin for a loaded machine: the work needs about 3 cycles
agents:
  bot: {runtime: scripted, model: none, settings: {command: $wf/agent.sh}}
issues:
  tracker: {kind: rust-json, issues_file: issues.json}
  pull: {idle_sec: 1}
issue:
  stages:
    work: {when: {state: todo}, agent: bot, prompt: "Work on {{ issue.id }}: {{ issue.title }} (attempt {{ attempt }})"}
scheduling:
  terminal_states: [done]
YML
cd "$wf"

out=$("$host" --plugins "$plugins" doctor workflow.yml 2>&1) || fail "doctor failed: $out"
echo "$out" | grep -qx "Vik doctor shows 0 error(s), 0 warning(s)" || fail "doctor is not clean: $out"

# The host parses what pull wrote (the escapes decoded) and prints it.
out=$("$host" --plugins "$plugins" tracker pull workflow.yml 2>"$scratch/err") || fail "tracker pull failed: $out $(cat "$scratch/err")"
grep -qF "tracker pull: 2 issue(s) from tracker rust-json" "$scratch/err" || fail "tracker pull summary: $(cat "$scratch/err")"
echo "$out" | grep -qF '"title": "Say \"hello\" from Rust",' || fail "pull lost the escaped title: $out"
echo "$out" | grep -qF '"description": "café ☕",' || fail "pull lost the \\u escapes: $out"
[ "$(echo "$out" | grep -c '"state": "todo"')" = 1 ] || fail "pull: expected one issue in todo: $out"

out=$("$host" --plugins "$plugins" tracker fetch R-2 NO-SUCH workflow.yml 2>"$scratch/err") || fail "tracker fetch failed: $out $(cat "$scratch/err")"
grep -qF "tracker fetch: 1 issue(s) from tracker rust-json" "$scratch/err" || fail "tracker fetch summary: $(cat "$scratch/err")"
echo "$out" | grep -qF '"id": "R-2",' || fail "fetch did not answer R-2: $out"
echo "$out" | grep -qF '"R-1"' && fail "fetch answered an issue it was not asked for: $out"

# Changes go to the plugin's own logs; an unknown issue is not_found, with the plugin's message.
out=$("$host" --plugins "$plugins" issue set-state NO-SUCH "done" workflow.yml 2>&1) && fail "set-state of an unknown issue passed: $out"
echo "$out" | grep -qF "issue set-state failed: issue 'NO-SUCH': no issue 'NO-SUCH' in $wf/issues.json" ||
  fail "set-state of an unknown issue: $out"
out=$("$host" --plugins "$plugins" issue comment R-2 $'two\nlines "quoted"' workflow.yml 2>&1) || fail "issue comment failed: $out"
[ "$(cat issues.json.comments)" = "$(printf 'R-2\t"two\\nlines \\"quoted\\""')" ] ||
  fail "unexpected comments log: $(cat issues.json.comments)"
[ ! -e issues.json.states ] || fail "a comment wrote the states log"

out=$("$host" --plugins "$plugins" --log-level debug run workflow.yml 2>&1) || fail "run failed: $out"
echo "$out" | grep -qF "[plugin rust-tracker call=tracker.fetch subject=ids [\"R-1\"]] fetch: 1 of 1 asked" ||
  fail "the continuation did not fetch R-1 from the plugin: $out"
echo "$out" | grep -q "retry launching issue_id=R-1 stage=work kind=continuation attempt=2" || fail "no continuation of R-1: $out"
echo "$out" | grep -qF "[plugin rust-tracker call=tracker.set_state subject=issue R-1] set_state: R-1 -> done" ||
  fail "the agent's set-state did not reach the plugin: $out"
echo "$out" | grep -q "workspace removed issue_id=R-1 (terminal state)" || fail "R-1 was not seen done: $out"
echo "$out" | grep -q "issue_id=R-2" && fail "R-2 (backlog) was worked on: $out"

# The end state, through the plugin's own files and through the host.
[ "$(cat issues.json.states)" = "$(printf 'R-1\tdone')" ] || fail "unexpected states log: $(cat issues.json.states)"
cmp -s issues.json "$scratch/issues.orig.json" || fail "the plugin rewrote issues.json"
out=$("$host" --plugins "$plugins" tracker pull workflow.yml 2>/dev/null) || fail "tracker pull after the run failed"
echo "$out" | tr -d ' \n' | grep -qF '"id":"R-1","title":"Say\"hello\"fromRust","description":"café☕","state":"done"' ||
  fail "pull after the run does not show R-1 done: $out"
echo "$out" | tr -d ' \n' | grep -qF '"id":"R-2","title":"Notyet","description":"","state":"backlog"' ||
  fail "pull after the run does not show R-2 in backlog: $out"

echo "rust tracker: built with $("$rustc" --version), one exported symbol, unit tests passed, checked, pulled, fetched, R-1 moved todo -> done by a run"
