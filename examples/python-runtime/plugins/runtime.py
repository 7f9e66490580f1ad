#!/usr/bin/env python3
"""An agent runtime as a program (docs/plugin-sdk.md, "Out-of-process plugins"), standard library
only: each session runs the profile's `settings.command` with `sh -c` in the workspace, feeds it
the prompt and reports each line it prints as a `message` event. Settings `mode: crash` makes this
process exit in the middle of a session, for the host's supervision tests."""
import json
import os
import signal
import subprocess
import sys
import threading

out_lock = threading.Lock()
lock = threading.Lock()
agents = {}  # session id -> Popen
cancelled = set()


def send(message):
    with out_lock:  # one whole line per message, whichever thread sends it
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def notify(method, **params):
    send({"jsonrpc": "2.0", "method": method, "params": params})


def run_session(sid, params):
    settings = params.get("profile", {}).get("settings", {})
    if settings.get("mode") == "crash":
        os._exit(3)
    env = dict(kv.split("=", 1) for kv in params.get("env", []))
    agent = subprocess.Popen(["sh", "-c", settings.get("command", "true")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, cwd=params.get("workdir") or None, env=env,
                             start_new_session=True)  # its own group: a cancel kills all of it
    with lock:
        agents[sid] = agent
        stop_now = sid in cancelled
    if stop_now:
        os.killpg(agent.pid, signal.SIGKILL)
    notify("session.process", session_id=sid, pid=agent.pid)
    try:
        agent.stdin.write(params.get("prompt", "").encode())
        agent.stdin.close()
    except BrokenPipeError:
        pass
    for raw in agent.stdout:
        notify("session.event", session_id=sid,
               event={"kind": "message", "text": raw.decode(errors="replace").rstrip("\n")})
    code = agent.wait()
    with lock:
        was_cancelled = sid in cancelled
    outcome = "cancelled" if was_cancelled else "completed" if code == 0 else "failed"
    notify("session.finish", session_id=sid, outcome=outcome, detail="exit " + str(code))


for line in sys.stdin:
    message = json.loads(line)
    method, params = message.get("method"), message.get("params", {})
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": message["id"], "result": {}})
    elif method == "runtime.start":
        send({"jsonrpc": "2.0", "id": message["id"], "result": {}})
        threading.Thread(target=run_session, args=(params["session_id"], params), daemon=True).start()
    elif method == "runtime.cancel":
        with lock:
            cancelled.add(params["session_id"])
            agent = agents.get(params["session_id"])
        if agent and agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
    elif method == "runtime.release":
        with lock:
            agents.pop(params["session_id"], None)
    elif method == "shutdown":
        break
    elif "id" in message:
        send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "unknown method " + str(method)}})
