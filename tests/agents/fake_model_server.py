#!/usr/bin/env python3
"""A fake model server on 127.0.0.1 for the real agent CLIs (stdlib only).

Speaks OpenAI's Responses API (POST /v1/responses, for codex), Anthropic's Messages API
(POST /v1/messages, for claude), the Generative Language API (POST
/v1beta/models/M:streamGenerateContent?alt=sse, for gemini) and OpenAI chat completions (POST
/v1/chat/completions, for opencode) with server-sent events. One turn: the first request is answered
with a shell tool call running COMMAND, the request carrying its result with a text message and
token usage.

Usage: fake_model_server.py --port-file FILE --scenario NAME --command CMD [--log FILE]
Scenarios: ok, error500 (HTTP 500), malformed (a broken event stream), hang (headers, then
silence), slowtool (the tool call runs for two minutes, so the agent can be killed mid-turn).
The server stops by itself after --lifetime seconds (default 300).
"""
import argparse
import json
import threading
import time
import os
import sys
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from loopback_server import serve  # noqa: E402

ARGS = None
LOG_LOCK = threading.Lock()


def log(line):
    if ARGS.log:
        with LOG_LOCK, open(ARGS.log, "a") as f:
            f.write(line + "\n")


def sse(handler, event, data):
    handler.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
    handler.wfile.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep stderr quiet
        pass

    def read_body(self):
        length = int(self.headers.get("Content-Length", "0") or "0")
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

    def fail_early(self, retry_after_ms=None):
        scenario = ARGS.scenario
        if scenario == "error500":
            body = json.dumps({"error": {"type": "server_error", "message": "the fake model is down"}}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            if retry_after_ms is not None:
                # opencode retries a 500 with growing delays for about a minute; it honours this.
                self.send_header("retry-after-ms", str(retry_after_ms))
            self.end_headers()
            self.wfile.write(body)
            return True
        if scenario == "hang":
            self.start_stream()
            time.sleep(ARGS.lifetime)
            return True
        return False

    def do_GET(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        body = self.read_body()
        path = self.path.split("?")[0]
        log(f"POST {self.path} {json.dumps(body)}")
        if ":streamGenerateContent" in path or ":generateContent" in path:
            return self.gemini(body, ":streamGenerateContent" in path)
        if path.endswith("/chat/completions"):
            return self.chat_completions(body)
        if path.endswith("/responses"):
            return self.openai_responses(body)
        if path.endswith("/messages"):
            return self.anthropic_messages(body)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # ---- OpenAI Responses API (codex) ------------------------------------------------------

    def openai_responses(self, body):
        if self.fail_early():
            return
        items = body.get("input") or []
        has_result = bool(items) and isinstance(items[-1], dict) and items[-1].get("type") == "function_call_output"
        self.start_stream()
        rid = "resp_2" if has_result else "resp_1"
        sse(self, "response.created", {"type": "response.created", "response": {"id": rid}})
        if ARGS.scenario == "malformed":
            self.wfile.write(b"event: response.output_item.added\ndata: {this is not json\n\n")
            self.wfile.flush()
            return
        if has_result:
            item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "The file is created.", "annotations": []}]}
        else:
            item = {"type": "function_call", "id": "fc_%d" % len(items), "status": "completed", "call_id": "call_%d" % len(items),
                    "name": "exec_command", "arguments": json.dumps({"cmd": ARGS.command})}
        sse(self, "response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item})
        sse(self, "response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item})
        usage = {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 20}, "output_tokens": 30,
                 "output_tokens_details": {"reasoning_tokens": 5}, "total_tokens": 150}
        sse(self, "response.completed", {"type": "response.completed", "response": {"id": rid, "usage": usage}})

    # ---- Anthropic Messages API (claude) -----------------------------------------------------

    def anthropic_messages(self, body):
        if self.fail_early():
            return
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs else {}
        content = last.get("content") if isinstance(last, dict) else None
        has_result = isinstance(content, list) and any(isinstance(c, dict) and c.get("type") == "tool_result" for c in content)
        if not body.get("stream"):
            # Side requests (titles, quota checks) get a plain short answer.
            text = json.dumps({"id": "msg_side", "type": "message", "role": "assistant", "model": body.get("model", "m"),
                               "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                               "usage": {"input_tokens": 1, "output_tokens": 1}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
            return
        self.start_stream()
        mid = "msg_2" if has_result else "msg_1"
        sse(self, "message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": body.get("model", "m"), "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 1, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 0}}})
        if ARGS.scenario == "malformed":
            self.wfile.write(b"event: content_block_start\ndata: {broken\n\n")
            self.wfile.flush()
            return
        if has_result:
            sse(self, "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
            sse(self, "content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": "The file is created."}})
            sse(self, "content_block_stop", {"type": "content_block_stop", "index": 0})
            stop = "end_turn"
        else:
            sse(self, "content_block_start", {"type": "content_block_start", "index": 0,
                                              "content_block": {"type": "tool_use", "id": "toolu_%d" % len(msgs), "name": "Bash", "input": {}}})
            sse(self, "content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "input_json_delta", "partial_json": json.dumps({"command": ARGS.command})}})
            sse(self, "content_block_stop", {"type": "content_block_stop", "index": 0})
            stop = "tool_use"
        sse(self, "message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                    "usage": {"output_tokens": 25}})
        sse(self, "message_stop", {"type": "message_stop"})

    # ---- Generative Language API (gemini) ----------------------------------------------------

    def gemini(self, body, stream):
        contents = body.get("contents") or []
        last = contents[-1] if contents else {}
        parts = last.get("parts") if isinstance(last, dict) else None
        has_result = isinstance(parts, list) and any(isinstance(p, dict) and "functionResponse" in p for p in parts)
        usage = {"promptTokenCount": 100, "candidatesTokenCount": 25, "cachedContentTokenCount": 10,
                 "thoughtsTokenCount": 5, "totalTokenCount": 130}
        if not stream:
            # Side requests (routing, next-speaker checks) get a plain short answer.
            text = json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": "{}"}]}, "finishReason": "STOP"}],
                               "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
            return
        if self.fail_early():
            return
        self.start_stream()
        if ARGS.scenario == "malformed":
            self.wfile.write(b"data: {this is not json\n\n")
            self.wfile.flush()
            return
        if has_result:
            frames = [{"candidates": [{"content": {"role": "model", "parts": [{"text": "The file "}]}, "index": 0}]},
                      {"candidates": [{"content": {"role": "model", "parts": [{"text": "is created."}]}, "finishReason": "STOP", "index": 0}],
                       "usageMetadata": usage}]
        else:
            call = {"functionCall": {"name": "run_shell_command", "args": {"command": ARGS.command}}}
            frames = [{"candidates": [{"content": {"role": "model", "parts": [call]}, "finishReason": "STOP", "index": 0}],
                       "usageMetadata": usage}]
        for f in frames:
            self.wfile.write(f"data: {json.dumps(f)}\n\n".encode())
            self.wfile.flush()

    # ---- OpenAI chat completions (opencode) --------------------------------------------------

    def chat_completions(self, body):
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs else {}
        has_result = isinstance(last, dict) and last.get("role") == "tool"
        if not body.get("tools"):
            # opencode titles the session with a separate request without tools.
            self.start_stream()
            chunk = {"id": "title", "object": "chat.completion.chunk", "created": 0, "model": body.get("model", "m"),
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Make a file"}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
            return
        if self.fail_early(retry_after_ms=10):
            return
        self.start_stream()
        base = {"id": "chatcmpl-2" if has_result else "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                "model": body.get("model", "m")}

        def chunk(choices, **extra):
            self.wfile.write(f"data: {json.dumps(dict(base, choices=choices, **extra))}\n\n".encode())
            self.wfile.flush()

        if ARGS.scenario == "malformed":
            chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            self.wfile.write(b"data: {this is not json\n\n")
            self.wfile.flush()
            return
        if has_result:
            chunk([{"index": 0, "delta": {"role": "assistant", "content": "The file "}, "finish_reason": None}])
            chunk([{"index": 0, "delta": {"content": "is created."}, "finish_reason": None}])
            chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        else:
            args = json.dumps({"command": ARGS.command, "description": "Create the file"})
            chunk([{"index": 0, "delta": {"role": "assistant", "tool_calls": [
                {"index": 0, "id": "call_%d" % len(msgs), "type": "function", "function": {"name": "bash", "arguments": ""}}]}, "finish_reason": None}])
            chunk([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": args}}]}, "finish_reason": None}])
            chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])
        chunk([], usage={"prompt_tokens": 100, "completion_tokens": 25, "total_tokens": 125,
                         "prompt_tokens_details": {"cached_tokens": 10}, "completion_tokens_details": {"reasoning_tokens": 5}})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--scenario", default="ok")
    p.add_argument("--command", default="touch created-by-agent.txt")
    p.add_argument("--log", default="")
    p.add_argument("--lifetime", type=float, default=300)
    ARGS = p.parse_args()
    if ARGS.scenario == "slowtool":
        ARGS.command = "timeout 120 tail -f /dev/null"
    serve(Handler, ARGS.port_file, ARGS.lifetime)


if __name__ == "__main__":
    main()
