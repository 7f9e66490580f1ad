#!/usr/bin/env bash
# Installs the pinned agent CLIs from the npm registry into DIR/node_modules (no global install).
# Cached: does nothing when both are already there. Exits non-zero with the reason otherwise.
set -uo pipefail
dir=$1
codex_version=0.169.0
claude_version=2.1.330
codex_bin="$dir/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
claude_bin="$dir/node_modules/@anthropic-ai/claude-code/bin/claude.exe"
if [ -x "$codex_bin" ] && [ -x "$claude_bin" ] && [ -f "$dir/.versions" ] && \
   [ "$(cat "$dir/.versions")" = "$codex_version $claude_version" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm is not installed"; exit 1; }
mkdir -p "$dir"
cd "$dir" || exit 1
[ -f package.json ] || echo '{"name":"vik-host-agent-clis","private":true}' > package.json
if ! timeout 600 npm install --no-audit --no-fund --silent --no-save \
     "@openai/codex@$codex_version" "@anthropic-ai/claude-code@$claude_version" > npm.log 2>&1; then
  echo "npm install of @openai/codex@$codex_version and @anthropic-ai/claude-code@$claude_version failed: $(tail -3 npm.log | tr '\n' ' ')"
  exit 1
fi
[ -x "$codex_bin" ] || { echo "codex binary missing after install: $codex_bin"; exit 1; }
[ -x "$claude_bin" ] || { echo "claude binary missing after install: $claude_bin"; exit 1; }
echo "$codex_version $claude_version" > .versions
