#!/usr/bin/env python3
"""host_bench: the real vik-host binary on the workloads of docs/performance.md, beside the floor.

Each workload runs `vik-host run` on a throw-away workflow in a scratch directory (its tracker is
`cat issues.json`, its agents are small shell scripts) and reads what the host used from the
line it logs when it stops (`host resources cpu_user_ms=... cpu_system_ms=... peak_rss_kib=...`,
the host process alone, its children not counted). The floor is the same agents run without a
host: `xargs -P` in pre-made directories. Rounds are interleaved (host, floor, host, ...) and
medians printed, with the ratio to the floor where there is one.

    python3 bench/host_bench.py [--host build/bin/vik-host] [--rounds 3] [--scratch DIR] [workload ...]

--scratch: where the scratch directories go (default: $TMPDIR or /tmp). The burst creates and
deletes about a thousand files and directories per round; on ext4 that has seen many deletions
in the last minutes, the kernel's inode allocator (which avoids recently deleted inodes) shows as
most of the host's CPU. A tmpfs (`--scratch /dev/shm`) measures the host without that.

workloads: burst (200 issues at concurrency 200, 20 codex events each), sleepers (500 live
sessions: memory per session), flood (one agent printing codex JSONL as fast as it can), intake
(100 000 issues, few matching: CPU and memory per intake cycle). Default: all.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CODEX_EVENTS = [
    '{"type":"thread.started","thread_id":"t-1"}',
    '{"type":"turn.started"}',
] + [
    '{"type":"item.completed","item":{"id":"i%d","type":"agent_message","text":"step %d of the work"}}' % (i, i)
    for i in range(16)
] + [
    '{"type":"item.completed","item":{"id":"c1","type":"command_execution","command":"true","exit_code":0,'
    '"aggregated_output":"","status":"completed"}}',
    '{"type":"turn.completed","usage":{"input_tokens":1200,"cached_input_tokens":800,"output_tokens":340}}',
]
assert len(CODEX_EVENTS) == 20

RESOURCES = re.compile(r"host resources cpu_user_ms=(\d+) cpu_system_ms=(\d+) peak_rss_kib=(\d+)")


def write(path, text, mode=None):
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def issues_json(n, matching, state="todo"):
    rows = []
    for i in range(n):
        s = state if i < matching else "backlog"
        rows.append('{"id":"B-%d","title":"issue %d","state":"%s","labels":["bench"],"description":"work item %d"}'
                    % (i, i, s, i))
    return "[" + ",".join(rows) + "]"


def workflow(concurrency, agent_script, idle_sec, iterations, stall=0):
    return f"""loop:
  max_issue_concurrency: {concurrency}
  max_iterations: {iterations}
agents:
  bench:
    runtime: codex
    model: bench-model
    command: {agent_script}
    timeout_sec: 600
    stall_timeout_sec: {stall}
issues:
  pull:
    command: cat issues.json
    idle_sec: {idle_sec}
issue:
  stages:
    work:
      when:
        state: todo
      agent: bench
      prompt: "Work on {{{{ issue.id }}}}: {{{{ issue.title }}}}"
"""


def run_host(host, workdir, timeout=600, while_running=None):
    """Runs the host to its end; returns (wall seconds, cpu ms, peak rss KiB, extra)."""
    shutil.rmtree(os.path.join(workdir, ".vik"), ignore_errors=True)
    log = open(os.path.join(workdir, "host.log"), "w+")
    t0 = time.monotonic()
    p = subprocess.Popen([host, "run", "workflow.yml"], cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    extra = while_running(p) if while_running else None
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise SystemExit(f"host_bench: the host did not finish within {timeout}s; see {workdir}/host.log")
    wall = time.monotonic() - t0
    log.seek(0)
    text = log.read()
    m = RESOURCES.search(text)
    if p.returncode != 0 or not m:
        raise SystemExit(f"host_bench: the host failed (exit {p.returncode}); see {workdir}/host.log")
    return wall, int(m.group(1)) + int(m.group(2)), int(m.group(3)), extra


def floor_xargs(workdir, n, parallel, agent_script):
    """The same agents without a host: each in its own pre-made directory, prompt on stdin."""
    dirs = os.path.join(workdir, "floor")
    shutil.rmtree(dirs, ignore_errors=True)
    os.makedirs(dirs)
    for i in range(n):
        os.makedirs(os.path.join(dirs, str(i)))
    t0 = time.monotonic()
    subprocess.run(["sh", "-c", f"seq 0 {n - 1} | xargs -P{parallel} -I@ env -C {dirs}/@ {agent_script} exec >/dev/null"],
                   check=True)
    return time.monotonic() - t0


def median(xs):
    return statistics.median(xs)


def burst(host, rounds):
    n = 200
    work = tempfile.mkdtemp(prefix="vik-bench-burst-")
    agent = os.path.join(work, "agent.sh")
    write(os.path.join(work, "events.jsonl"), "\n".join(CODEX_EVENTS) + "\n")
    write(agent, f"#!/bin/sh\nexec cat {work}/events.jsonl\n", 0o755)
    write(os.path.join(work, "issues.json"), issues_json(n, n))
    write(os.path.join(work, "workflow.yml"), workflow(n, agent, 3600, 1))
    walls, cpus, rss, floors = [], [], [], []
    for _ in range(rounds):
        w, c, r, _ = run_host(host, work)
        walls.append(w), cpus.append(c), rss.append(r)
        floors.append(floor_xargs(work, n, n, agent))
    wall, fl = median(walls), median(floors)
    print(f"burst: {n} issues, one stage, concurrency {n}, an agent printing 20 codex events")
    print(f"  wall                 host {wall * 1000:8.1f} ms   floor (xargs -P{n}) {fl * 1000:8.1f} ms   ratio {wall / fl:5.2f}x")
    print(f"  host CPU per session {median(cpus) / n:8.3f} ms")
    print(f"  peak RSS             {median(rss) / 1024:8.1f} MiB")
    shutil.rmtree(work, ignore_errors=True)


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def live_sessions(workdir):
    base = os.path.join(workdir, ".vik")
    count = 0
    for root, _dirs, files in os.walk(base):
        if os.path.basename(os.path.dirname(root)) == "sessions" or "/sessions/" in root + "/":
            count += sum(1 for f in files if f.endswith(".jsonl"))
    return count


def sleepers(host, rounds):
    work = tempfile.mkdtemp(prefix="vik-bench-sleep-")
    agent = os.path.join(work, "agent.sh")
    # One event, then silence until the host stops the run.
    write(agent, "#!/bin/sh\necho '{\"type\":\"thread.started\",\"thread_id\":\"t\"}'\nexec sleep 600\n", 0o755)

    def measure(n):
        write(os.path.join(work, "issues.json"), issues_json(n, n))
        write(os.path.join(work, "workflow.yml"), workflow(n, agent, 3600, 1))

        def sample(p):
            deadline = time.monotonic() + 120
            while live_sessions(work) < n and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # the last sessions' first events are handled
            rss = proc_rss_kib(p.pid)
            p.send_signal(2)  # SIGINT: cancel the sessions, drain, exit
            return rss

        return run_host(host, work, while_running=sample)[3]

    base, full = [], []
    n = 500
    for _ in range(rounds):
        base.append(measure(1))
        full.append(measure(n))
    per = (median(full) - median(base)) / (n - 1)
    print(f"sleepers: {n} live sessions (agents asleep after one event)")
    print(f"  host RSS with 1 session {median(base) / 1024:6.1f} MiB, with {n}: {median(full) / 1024:6.1f} MiB")
    print(f"  RSS per live session    {per:6.1f} KiB")
    shutil.rmtree(work, ignore_errors=True)


def flood(host, rounds):
    events = 1_000_000
    work = tempfile.mkdtemp(prefix="vik-bench-flood-")
    agent = os.path.join(work, "agent.sh")
    line = '{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"flooding the host with events"}}'
    write(agent, f"#!/bin/sh\necho '{CODEX_EVENTS[0]}'\nyes '{line}' | head -n {events}\n"
                 f"echo '{CODEX_EVENTS[-1]}'\n", 0o755)
    write(os.path.join(work, "issues.json"), issues_json(1, 1))
    write(os.path.join(work, "workflow.yml"), workflow(1, agent, 3600, 1))
    rates, rss, walls = [], [], []
    for _ in range(rounds):
        w, c, r, _ = run_host(host, work)
        rates.append(events / (c / 1000.0))
        rss.append(r)
        walls.append(w)
    t0 = time.monotonic()
    subprocess.run(["sh", "-c", f"echo | {agent} > /dev/null"], check=True)
    fl = time.monotonic() - t0
    print(f"flood: one agent printing {events} codex events as fast as it can")
    print(f"  events per host CPU-second {median(rates) / 1e6:6.2f} M   (wall {median(walls):.2f} s; the agent alone into /dev/null: {fl:.2f} s)")
    print(f"  peak RSS                   {median(rss) / 1024:6.1f} MiB")
    shutil.rmtree(work, ignore_errors=True)


def intake(host, rounds):
    n, cycles = 100_000, 3
    work = tempfile.mkdtemp(prefix="vik-bench-intake-")
    agent = os.path.join(work, "agent.sh")
    write(agent, "#!/bin/sh\ncat >/dev/null\n", 0o755)
    write(os.path.join(work, "workflow.yml"), workflow(10, agent, 1, cycles))
    big, empty, rss = [], [], []
    for _ in range(rounds):
        write(os.path.join(work, "issues.json"), issues_json(n, 0))
        _w, c, r, _ = run_host(host, work)
        big.append(c), rss.append(r)
        write(os.path.join(work, "issues.json"), "[]")
        empty.append(run_host(host, work)[1])
    write(os.path.join(work, "issues.json"), issues_json(n, 0))
    t0 = time.monotonic()
    for _ in range(cycles):
        subprocess.run(["sh", "-c", "cat issues.json > /dev/null"], cwd=work, check=True)
    pull = (time.monotonic() - t0) / cycles
    per_cycle = (median(big) - median(empty)) / cycles
    print(f"intake: {n} issues ({os.path.getsize(os.path.join(work, 'issues.json')) // 1024} KiB of JSON), none matching, {cycles} cycles")
    print(f"  host CPU per cycle {per_cycle:8.1f} ms   (beyond an empty pull's; the pull command alone: {pull * 1000:.1f} ms wall)")
    print(f"  peak RSS           {median(rss) / 1024:8.1f} MiB")
    shutil.rmtree(work, ignore_errors=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.path.join(here, "..", "build", "bin", "vik-host"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scratch", default=None, help="directory for the scratch trees (default: $TMPDIR or /tmp)")
    ap.add_argument("workloads", nargs="*", default=["burst", "sleepers", "flood", "intake"])
    a = ap.parse_args()
    if a.scratch:
        tempfile.tempdir = os.path.abspath(a.scratch)
    host = os.path.abspath(a.host)
    if not os.access(host, os.X_OK):
        sys.exit(f"host_bench: no vik-host at {host} (build it, or pass --host)")
    print(f"vik-host {host}, {os.cpu_count()} cores, {a.rounds} rounds, medians, scratch in {tempfile.gettempdir()}")
    table = {"burst": burst, "sleepers": sleepers, "flood": flood, "intake": intake}
    for w in a.workloads:
        if w not in table:
            sys.exit(f"host_bench: unknown workload '{w}' (burst, sleepers, flood, intake)")
        table[w](host, a.rounds)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
