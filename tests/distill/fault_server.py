#!/usr/bin/env python3
"""A fake OpenAI-compatible teacher for tests/distill/remote-*.sh: answers
/v1/chat/completions and /v1/completions, and misbehaves on request, by markers in
the prompt: [429] (the first request of each sample: 429), [500] (the first two: 500),
[cut] (the first: the connection closes mid-answer), [400] (always 400). Every request
is logged as one JSON line {"prompt", "seed", "status"} in LOG, so a test can count
what reached the server.
   usage: fault_server.py PORTFILE LOG [--delay S] [--key KEY]"""
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_path = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
delay = float(args[args.index("--delay") + 1]) if "--delay" in args else 0.0
key = args[args.index("--key") + 1] if "--key" in args else None
lock = threading.Lock()
counts = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, doc, headers=()):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        chat = self.path.endswith("/chat/completions")
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        seed = body.get("seed")
        with lock:
            n = counts.get((prompt, seed), 0)
            counts[(prompt, seed)] = n + 1
        if delay:
            time.sleep(delay)
        status = 200
        if key is not None and self.headers.get("Authorization") != "Bearer " + key:
            status = 401
        elif "[400]" in prompt:
            status = 400
        elif "[429]" in prompt and n == 0:
            status = 429
        elif "[500]" in prompt and n < 2:
            status = 500
        elif "[cut]" in prompt and n == 0:
            status = -1
        with lock, open(log_path, "a") as log:
            log.write(json.dumps({"prompt": prompt, "seed": seed, "status": status}) + "\n")
        if status == -1:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "400")
            self.end_headers()
            self.wfile.write(b'{"choices": [{"mess')
            self.wfile.flush()
            self.close_connection = True
            return
        if status != 200:
            self.reply(status, {"error": {"message": "injected %d" % status}},
                       [("Retry-After", "0")] if status == 429 else [])
            return
        text = "The teacher says %s, take %d." % (prompt.split(" [")[0], seed % 1000)
        choice = {"message": {"role": "assistant", "content": text}} if chat else {"text": " " + text}
        choice["finish_reason"] = "stop"
        self.reply(200, {"object": "chat.completion", "choices": [choice]})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)   # a client killed mid-answer: expected


server = Server(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
