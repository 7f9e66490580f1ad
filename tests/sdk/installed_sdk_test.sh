#!/usr/bin/env bash
# The installed SDK from the outside, as a plugin author uses it: `cmake --install` the build
# into a scratch prefix, build the installed plugin template with find_package(VikHostSDK) and
# again with pkg-config and a plain compiler, check that each exports only vik_plugin_entry, and
# run a workflow on it with the installed vik-host beside the installed built-in plugins.
# With `deb`, the install is the Debian packages instead: `cpack -G DEB` makes vik-host and
# vik-host-dev, and dpkg installs both into a scratch root (its own admin directory).
# Usage: installed_sdk_test.sh BUILD_DIR [deb]
set -euo pipefail
build=$1
mode=${2:-install}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [ "$mode" = deb ]; then
  (cd "$build" && cpack -G DEB -B "$scratch/debs" >/dev/null)
  debs=("$scratch"/debs/*.deb)
  [ ${#debs[@]} -eq 2 ] || { echo "FAILED: expected two packages, got: ${debs[*]}" >&2; exit 1; }
  for d in "${debs[@]}"; do dpkg-deb --info "$d" | grep -E "^ (Package|Depends):"; done
  root=$scratch/root
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
  touch "$root/var/lib/dpkg/status"
  # --force-depends: the scratch root's database does not know the system's libraries.
  dpkg --root="$root" --admindir="$root/var/lib/dpkg" --log=/dev/null --force-depends --force-not-root \
    --force-script-chrootless -i "${debs[@]}" >/dev/null
  dpkg --root="$root" --admindir="$root/var/lib/dpkg" -l | grep -E "^ii +vik-host(-dev)? " >/dev/null ||
    { echo "FAILED: dpkg does not list both packages as installed" >&2; exit 1; }
  prefix=$root/usr
  for f in lib/systemd/system/vik-host@.service share/man/man1/vik-host.1 share/bash-completion/completions/vik-host \
           share/doc/vik-host/security.md share/doc/vik-host/examples/python-runtime/plugins/runtime.py \
           lib/vik-host/plugins/libvik-codex.so lib/vik-host/libvik-webhook-post.so; do
    [ -e "$prefix/$f" ] || { echo "FAILED: the vik-host package lacks $f" >&2; exit 1; }
  done
  [ -x "$prefix/share/doc/vik-host/examples/python-runtime/plugins/runtime.py" ] ||
    { echo "FAILED: the packaged example runtime is not executable" >&2; exit 1; }
else
  prefix=$scratch/prefix
  cmake --install "$build" --prefix "$prefix" >/dev/null
fi

fail() { echo "FAILED: $*" >&2; exit 1; }
exports_only_entry() {
  local syms
  syms=$(nm -D --defined-only "$1" | awk '{print $3}')
  [ "$syms" = "vik_plugin_entry" ] || fail "$1 exports: $(echo $syms)"
}

for f in include/vik/plugin.h include/vik/plugin.hpp include/vik/process_session.hpp \
         lib/cmake/VikHostSDK/VikHostSDKConfig.cmake lib/cmake/VikHostSDK/VikPlugin.cmake \
         lib/pkgconfig/vik-host-sdk.pc share/vik-host/plugin-template/CMakeLists.txt bin/vik-host; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done

# 1. CMake: find_package + vik_add_plugin on a copy of the installed template.
cp -r "$prefix/share/vik-host/plugin-template" "$scratch/src"
cmake -S "$scratch/src" -B "$scratch/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/b" >/dev/null
so=$scratch/b/plugins/libvik-example-tracker.so
[ -f "$so" ] && [ -f "$scratch/b/plugins/vik-example-tracker.toml" ] || fail "template plugin not built into b/plugins"
exports_only_entry "$so"

# 2. pkg-config and a plain compiler.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
mkdir -p "$scratch/pc"
cc -std=c11 -shared -fPIC $(pkg-config --cflags vik-host-sdk) "$scratch/src/tracker.c" \
   -Wl,--version-script="$(pkg-config --variable=mapfile vik-host-sdk)" -Wl,--no-undefined -o "$scratch/pc/libvik-example-tracker.so"
exports_only_entry "$scratch/pc/libvik-example-tracker.so"

# 3. A workflow on the out-of-tree tracker, run by the installed host with its built-ins beside it.
mkdir -p "$scratch/wf"
cat > "$scratch/wf/agent.sh" <<'SH'
#!/bin/sh
cat >/dev/null
echo '{"kind":"completed"}'
SH
chmod +x "$scratch/wf/agent.sh"
cat > "$scratch/wf/workflow.yml" <<YML
loop: {max_iterations: 1}
agents:
  bot: {runtime: scripted, model: none, settings: {command: $scratch/wf/agent.sh}}
issues:
  tracker: {kind: example}
issue:
  stages:
    work: {when: {state: todo}, agent: bot, prompt: hi}
YML
out=$("$prefix/bin/vik-host" --plugins "$prefix/lib/vik-host/plugins" --plugins "$scratch/b/plugins" run "$scratch/wf/workflow.yml" 2>&1) ||
  fail "run failed: $out"
echo "$out" | grep -q "issues pulled count=1" || fail "no pull from the template tracker: $out"
echo "$out" | grep -q "session finished issue_id=EX-1 stage=work" || fail "no session for EX-1: $out"
echo "installed SDK ($mode): template built with find_package and pkg-config, one exported symbol, workflow ran"
