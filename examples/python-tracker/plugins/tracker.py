#!/usr/bin/env python3
"""A vik-host tracker plugin written in Python: issues kept in a JSON file.

vik-host starts this program and sends one JSON-RPC 2.0 request per line on stdin; each answer
is one line on stdout. Log lines go to stderr or, with a level, as `log` notifications. The
whole protocol is in docs/plugin-sdk.md ("Out-of-process plugins").
"""
import contextlib
import fcntl
import json
import os
import sys
import tempfile

issues_path = None


def log(level, message):
    send({"jsonrpc": "2.0", "method": "log", "params": {"level": level, "message": message}})


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class PluginError(Exception):
    def __init__(self, message, status="error"):
        super().__init__(message)
        self.status = status


def load():
    try:
        with open(issues_path, encoding="utf-8") as f:
            issues = json.load(f)
    except FileNotFoundError:
        raise PluginError(f"{issues_path} does not exist", "not_found")
    except json.JSONDecodeError as e:
        raise PluginError(f"{issues_path} is not JSON: {e}")
    if not isinstance(issues, list):
        raise PluginError(f"{issues_path} must hold a JSON array of issues")
    return issues


@contextlib.contextmanager
def locked():
    # Every change is read-modify-write: one writer at a time, also across processes (a second
    # vik-host command may run this plugin too).
    with open(issues_path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def save(issues):
    # Written beside the file, flushed to disk and renamed over it, keeping the file's mode: a
    # reader never sees half a file, and a crash leaves the old one.
    folder = os.path.dirname(issues_path) or "."
    mode = os.stat(issues_path).st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".issues-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(issues, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, issues_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def find(issues, issue_id):
    for issue in issues:
        if issue.get("id") == issue_id:
            return issue
    raise PluginError(f"no issue {issue_id} in {issues_path}", "not_found")


def initialize(params):
    global issues_path
    settings = params.get("settings") or {}
    path = settings.get("path")
    if not isinstance(path, str) or not path:
        raise PluginError("setting 'path' (the issues file) is required", "invalid_argument")
    if not os.path.isabs(path):
        path = os.path.join(settings.get("workflow_dir", "."), path)
    issues_path = path
    log("info", f"serving issues from {issues_path}")
    return {}


def pull(params):
    return load()


def fetch(params):
    wanted = set(params.get("ids") or [])
    return [i for i in load() if i.get("id") in wanted]


def required(params, name):
    value = params.get(name)
    if not isinstance(value, str):
        raise PluginError(f"parameter '{name}' (a string) is required", "invalid_argument")
    return value


def set_state(params):
    with locked():
        issues = load()
        find(issues, required(params, "id"))["state"] = required(params, "state")
        save(issues)
    return None


def comment(params):
    with locked():
        issues = load()
        find(issues, required(params, "id")).setdefault("comments", []).append(required(params, "body"))
        save(issues)
    return None


METHODS = {
    "initialize": initialize,
    "tracker.pull": pull,
    "tracker.fetch": fetch,
    "tracker.set_state": set_state,
    "tracker.comment": comment,
}


def main():
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except json.JSONDecodeError:
            send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "not JSON"}})
            continue
        method = request.get("method")
        if method == "shutdown":
            break
        if "id" not in request:
            continue  # a notification this plugin does not know
        handler = METHODS.get(method)
        if handler is None:
            send({"jsonrpc": "2.0", "id": request["id"],
                  "error": {"code": -32601, "message": f"unknown method {method}"}})
            continue
        try:
            result = handler(request.get("params") or {})
            send({"jsonrpc": "2.0", "id": request["id"], "result": result})
        except PluginError as e:
            send({"jsonrpc": "2.0", "id": request["id"],
                  "error": {"code": -32000, "message": str(e), "data": {"status": e.status}}})
        except Exception as e:  # a bug here must not kill the plugin: the host hears of it
            send({"jsonrpc": "2.0", "id": request["id"],
                  "error": {"code": -32000, "message": f"{type(e).__name__}: {e}"}})


if __name__ == "__main__":
    main()
