#!/usr/bin/env bash
# ctest entry for the tests that drive the real agent CLIs (codex, claude, gemini, opencode). Installs
# them first (cached); when that is impossible (no registry), reports the test as skipped (exit 77) with the
# reason, never as passed.
set -uo pipefail
tests_bin=$1
clis_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
if ! reason=$(bash "$here/install-clis.sh" "$clis_dir" 2>&1); then
  echo "SKIPPED: the real agent CLIs are not available: $reason"
  exit 77
fi
command -v python3 >/dev/null || { echo "SKIPPED: python3 (for the fake model server) is not installed"; exit 77; }
export VIK_AGENT_CLIS="$clis_dir"
exec "$tests_bin" "[real-cli]"
