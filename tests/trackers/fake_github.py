#!/usr/bin/env python3
"""A fake GitHub API on 127.0.0.1 for the github-tracker tests (stdlib only).

REST: GET /repos/O/R/issues (state, labels, assignee, per_page, page; Link pagination; ETag and
If-None-Match -> 304), GET /repos/O/R/issues/N, PATCH /repos/O/R/issues/N, POST .../labels,
DELETE .../labels/NAME, POST .../comments. GraphQL (POST /graphql): the Projects v2 items query,
the Status field query and the updateProjectV2ItemFieldValue mutation the plugin sends.

--data FILE     {"repos": {"O/R": [issue, ...]}, "project": {...}} (issues in GitHub's REST shape).
                project: {"id", "field_id", "options": {name: option id}, "page_size" (items per
                GraphQL page, at most the query's `first`; default 2 so paging is exercised),
                "items": [{"id", "repo", "number", "status", "archived"}]}
--state FILE    the current data, rewritten after every change (tests read it)
--log FILE      one JSON line per request: method, path, query, if_none_match, status, auth, and
                for GraphQL `op`: "items" (a page of the board), "field" (the Status field) or
                "mutation"
--faults FILE   a JSON list of {"match": "GET /repos/...", "status": 502, "times": 1,
                "headers": {...}, "reset_in": 2} consumed in order
POST /_fake/project  (tests only, not logged) replaces the project with the posted JSON, as if
                someone edited the board (items removed and re-added get new ids)
--page-delay-ms N  every page of items (REST issue lists, GraphQL board pages) is answered N ms
                after it was read, so tests can change data while a pull is in flight and the
                pull sees the old page
"""
import argparse
import copy
import hashlib
import json
import re
import threading
import time
import urllib.parse
import os
import sys
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from loopback_server import serve  # noqa: E402

LOCK = threading.Lock()
ARGS = None
DATA = {}
FAULTS = []


def save():
    with open(ARGS.state + ".tmp", "w") as f:
        json.dump(DATA, f)
    os.replace(ARGS.state + ".tmp", ARGS.state)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    op = None  # the GraphQL operation of this request, for the log

    def log_message(self, *a):
        pass

    def reply(self, status, body=None, headers=None):
        # Logged before answering: a test that saw the answer must find the request in the log.
        self.record(status)
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("x-ratelimit-limit", "5000")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "x-ratelimit-remaining" not in {k.lower() for k in (headers or {})}:
            self.send_header("x-ratelimit-remaining", "4999")
            self.send_header("x-ratelimit-reset", str(int(time.time()) + 3600))
        self.end_headers()
        if raw and self.command != "HEAD":
            self.wfile.write(raw)

    def record(self, status):
        if not ARGS.log:
            return
        url = urllib.parse.urlsplit(self.path)
        entry = {"method": self.command, "path": url.path, "query": url.query, "status": status,
                 "if_none_match": self.headers.get("If-None-Match"), "auth": self.headers.get("Authorization")}
        if self.op:
            entry["op"] = self.op
        with LOCK, open(ARGS.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def fault(self):
        key = f"{self.command} {urllib.parse.urlsplit(self.path).path}"
        with LOCK:
            for fault in FAULTS:
                if fault.get("times", 1) > 0 and key.startswith(fault["match"]):
                    fault["times"] = fault.get("times", 1) - 1
                    headers = dict(fault.get("headers", {}))
                    if "reset_in" in fault:
                        headers["x-ratelimit-remaining"] = "0"
                        headers["x-ratelimit-reset"] = str(int(time.time() + fault["reset_in"]))
                    return fault["status"], headers
        return None

    def body(self):
        n = int(self.headers.get("Content-Length", "0") or "0")
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else {}

    def handle_any(self):
        f = self.fault()
        if f:
            self.body()
            return self.reply(f[0], {"message": "injected fault"}, f[1])
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_fake/project" and self.command == "POST":
            project = self.body()
            with LOCK:
                DATA["project"] = project
                save()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/graphql" and self.command == "POST":
            return self.graphql(self.body())
        if len(parts) >= 4 and parts[0] == "repos" and parts[3] == "issues":
            repo = parts[1] + "/" + parts[2]
            issues = DATA["repos"].get(repo)
            if issues is None:
                return self.reply(404, {"message": "Not Found"})
            if len(parts) == 4 and self.command == "GET":
                return self.list_issues(issues, q)
            number = int(parts[4])
            issue = next((i for i in issues if i["number"] == number), None)
            if issue is None:
                return self.reply(404, {"message": "Not Found"})
            if len(parts) == 5 and self.command == "GET":
                return self.reply(200, issue, {"ETag": '"%s"' % hashlib.sha1(json.dumps(issue).encode()).hexdigest()})
            if len(parts) == 5 and self.command == "PATCH":
                with LOCK:
                    issue.update({k: v for k, v in self.body().items() if k in ("state", "title", "body")})
                    save()
                return self.reply(200, issue)
            if len(parts) == 6 and parts[5] == "labels" and self.command == "POST":
                with LOCK:
                    for name in self.body().get("labels", []):
                        if all(l["name"] != name for l in issue["labels"]):
                            issue["labels"].append({"name": name})
                    save()
                return self.reply(200, issue["labels"])
            if len(parts) == 7 and parts[5] == "labels" and self.command == "DELETE":
                with LOCK:
                    issue["labels"] = [l for l in issue["labels"] if l["name"] != parts[6]]
                    save()
                return self.reply(200, issue["labels"])
            if len(parts) == 6 and parts[5] == "comments" and self.command == "POST":
                with LOCK:
                    issue.setdefault("comments_list", []).append(self.body().get("body"))
                    save()
                return self.reply(201, {"id": len(issue["comments_list"])})
        return self.reply(404, {"message": "Not Found"})

    def list_issues(self, issues, q):
        state = q.get("state", ["open"])[0]
        per_page = int(q.get("per_page", ["30"])[0])
        page = int(q.get("page", ["1"])[0])
        want_labels = [l for l in q.get("labels", [""])[0].split(",") if l]
        assignee = q.get("assignee", [None])[0]
        chosen = [i for i in issues if state == "all" or i["state"] == state]
        chosen = [i for i in chosen if all(any(l["name"] == w for l in i["labels"]) for w in want_labels)]
        if assignee:
            chosen = [i for i in chosen if any(a["login"] == assignee for a in i.get("assignees", []))]
        pages = max(1, (len(chosen) + per_page - 1) // per_page)
        with LOCK:
            body = copy.deepcopy(chosen[(page - 1) * per_page: page * per_page])
        page_delay()
        etag = '"%s"' % hashlib.sha1(json.dumps(body).encode()).hexdigest()
        headers = {"ETag": etag}
        base = f"http://127.0.0.1:{self.server.server_address[1]}{urllib.parse.urlsplit(self.path).path}"
        links = []
        keep = {k: v[0] for k, v in q.items() if k != "page"}
        if page < pages:
            links.append(f'<{base}?{urllib.parse.urlencode({**keep, "page": page + 1})}>; rel="next"')
            links.append(f'<{base}?{urllib.parse.urlencode({**keep, "page": pages})}>; rel="last"')
        if links:
            headers["Link"] = ", ".join(links)
        if self.headers.get("If-None-Match") == etag:
            self.record(304)
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self.reply(200, body, headers)

    def graphql(self, req):
        query = req.get("query", "")
        v = req.get("variables", {})
        p = DATA.get("project")
        self.op = "mutation" if query.lstrip().startswith("mutation") else "items" if "items(" in query else "field"
        if p is None:
            return self.reply(200, {"data": {"organization": None}, "errors": [{"message": "no project"}]})
        if self.op == "mutation":
            with LOCK:
                name = next((n for n, oid in p["options"].items() if oid == v["option"]), None)
                item = next((i for i in p["items"] if i["id"] == v["item"]), None)
                if name is not None and item is not None:
                    item["status"] = name
                    save()
            if name is None or item is None:  # answered outside the lock: reply() takes it to log
                missing = v["option"] if name is None else v["item"]
                return self.reply(200, {"data": None, "errors": [{"message": f"Could not resolve to a node with the global id of '{missing}'"}]})
            return self.reply(200, {"data": {"updateProjectV2ItemFieldValue": {"projectV2Item": {"id": v["item"]}}}})
        project = {}
        if self.op == "items":
            first = int(re.search(r"items\(first: (\d+)", query).group(1))
            size = min(first, p.get("page_size", 2))
            start = int(v.get("after") or 0)
            with LOCK:  # one consistent snapshot, answered after the page delay
                nodes = [self.node(item) for item in p["items"][start:start + size]]
                more = start + size < len(p["items"])
            page_delay()
            project["items"] = {"pageInfo": {"hasNextPage": more, "endCursor": str(start + size) if more else None}, "nodes": nodes}
        if "field(name:" in query:
            project["id"] = p["id"]
            project["field"] = {"id": p["field_id"], "options": [{"id": oid, "name": n} for n, oid in p["options"].items()]}
        return self.reply(200, {"data": {"organization": {"projectV2": project}}})

    @staticmethod
    def node(item):
        repo_issues = DATA["repos"].get(item["repo"], [])
        issue = next((i for i in repo_issues if i["number"] == item["number"]), None)
        content = {} if issue is None else {
            "number": issue["number"], "title": issue["title"], "body": issue.get("body") or "", "url": issue["html_url"],
            "state": issue["state"].upper(), "createdAt": issue["created_at"], "updatedAt": issue["updated_at"],
            "repository": {"nameWithOwner": item["repo"]}, "author": {"login": issue["user"]["login"]},
            "labels": {"nodes": [{"name": l["name"]} for l in issue["labels"]]},
            "assignees": {"nodes": [{"login": a["login"]} for a in issue.get("assignees", [])]}}
        return {"id": item["id"], "isArchived": bool(item.get("archived")),
                "fieldValueByName": {"name": item["status"]} if item.get("status") else None, "content": content}

    do_GET = do_POST = do_PATCH = do_DELETE = handle_any


def page_delay():
    if ARGS.page_delay_ms > 0:
        time.sleep(ARGS.page_delay_ms / 1000)


def main():
    global ARGS, DATA, FAULTS
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--log", default="")
    p.add_argument("--faults", default="")
    p.add_argument("--lifetime", type=float, default=300)
    p.add_argument("--page-delay-ms", type=int, default=0)
    ARGS = p.parse_args()
    DATA = json.load(open(ARGS.data))
    FAULTS = json.load(open(ARGS.faults)) if ARGS.faults else []
    save()
    serve(Handler, ARGS.port_file, ARGS.lifetime)


if __name__ == "__main__":
    main()
