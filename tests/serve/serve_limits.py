#!/usr/bin/env python3
"""A `slmops serve` with one slot, a queue of one and 8 connections at most
(tests/serve/serve.sh starts it): a connection beyond the limit is closed at once;
the request beyond the queue gets 429 with Retry-After; then SIGTERM while requests
run: they finish in full, a request that comes after gets 503."""
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time

port, pid = int(sys.argv[1]), int(sys.argv[2])
failures = 0


def check(name, cond, detail=""):
    global failures
    print(f"ok - {name}" if cond else f"not ok - {name}{': ' + detail if detail else ''}")
    failures += not cond


def post(body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", "/v1/completions", json.dumps(body),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, r.getheader("Retry-After"), payload


def run_all(bodies, between=0.0, after=None):
    out = [None] * len(bodies)

    def one(i):
        out[i] = post(bodies[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
        time.sleep(between)
    if after:
        after()
    for t in threads:
        t.join()
    return out


# --max-connections 8: with 8 held open, a ninth is closed without an answer; once
# they are gone, requests are served again.
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
time.sleep(0.2)
extra = socket.create_connection(("127.0.0.1", port))
extra.settimeout(5)
try:
    extra.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = extra.recv(100)
except OSError:
    got = b""
extra.close()
check("a connection beyond --max-connections is closed", got == b"", repr(got[:60]))
for h in held:
    h.close()
time.sleep(0.2)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/health")
check("served again once connections are closed", c.getresponse().status == 200)
c.close()

long = {"prompt": "Once upon a time", "max_tokens": 3000, "temperature": 0}
got = run_all([long] * 3, between=0.05)
statuses = sorted(g[0] for g in got)
busy = [g for g in got if g[0] == 429]
check("one slot and a queue of one: the third request gets 429", statuses == [200, 200, 429],
      str(statuses))
if busy:
    err = json.loads(busy[0][2])["error"]
    check("429 has Retry-After and OpenAI's body", busy[0][1] == "1" and
          err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded", str(busy[0]))

late = []


def term():
    """SIGTERM once one request runs and the other waits in the queue."""
    for _ in range(500):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/health")
        h = json.loads(c.getresponse().read())
        c.close()
        if h["slots_processing"] == 1 and h["requests_queued"] == 1:
            break
        time.sleep(0.01)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.05)
    late.append(post({"prompt": "late", "max_tokens": 2}))


got = run_all([long, long], between=0.05, after=term)
check("requests in flight at SIGTERM finish in full",
      all(g[0] == 200 and json.loads(g[2])["usage"]["completion_tokens"] == 3000 for g in got),
      str([(g[0], g[2][-80:]) for g in got]))
check("a request after SIGTERM gets 503",
      late and late[0][0] == 503 and json.loads(late[0][2])["error"]["type"] == "server_error",
      str(late))
sys.exit(1 if failures else 0)
