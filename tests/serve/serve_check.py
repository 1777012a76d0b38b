#!/usr/bin/env python3
"""Drives a running `slmops serve` (tests/serve/serve.sh starts it) over loopback
with the standard library only: answers against the CLI's greedy texts, streams,
concurrent streams, a client that leaves mid-stream, and a catalogue of malformed
and hostile requests (bad JSON, huge bodies and headers, wrong types, bad keys and
Host names, a slowloris connection), each with its documented status."""
import http.client
import json
import socket
import sys
import threading
import time

port = int(sys.argv[1])
expect = json.load(open(sys.argv[2]))
KEY = expect.get("key")
failures = 0


def check(name, cond, detail=""):
    global failures
    if cond:
        print(f"ok - {name}")
    else:
        failures += 1
        print(f"not ok - {name}{': ' + detail if detail else ''}")


def request(method, path, body=None, raw=None, headers=None):
    if headers and "Host" in headers:   # http.client writes its own Host otherwise
        return request_host(method, path, body, raw, headers)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"Content-Type": "application/json"}
    if KEY:
        h["Authorization"] = "Bearer " + KEY
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v is not None}
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, r.getheader("Content-Type") or "", payload


def request_host(method, path, body, raw, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    h = {"Content-Type": "application/json", "Content-Length": str(len(data or b""))}
    if KEY:
        h["Authorization"] = "Bearer " + KEY
    h.update(headers)
    for k, v in h.items():
        c.putheader(k, v)
    c.endheaders(data)
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, r.getheader("Content-Type") or "", payload


def post(path, body):
    status, ctype, payload = request("POST", path, body)
    return status, json.loads(payload) if payload else None


def stream(path, body):
    """The events of a streamed answer: (status, [parsed chunks], saw_done)."""
    status, ctype, payload = request("POST", path, dict(body, stream=True))
    chunks, done = [], False
    for block in payload.decode().split("\n\n"):
        if not block.strip():
            continue
        if not block.startswith("data: "):
            print(f"# not an SSE data line: {block[:200]!r}")
            return status, None, False
        data = block[len("data: "):]
        if data == "[DONE]":
            done = True
        else:
            chunks.append(json.loads(data))
    return status, chunks, done and ctype.startswith("text/event-stream")


def health():
    return json.loads(request("GET", "/health")[2])


# ---- plain answers ----

status, _, body = request("GET", "/health")
check("GET /health", status == 200 and json.loads(body)["status"] == "ok", body)
status, doc = 0, None
s, _, body = request("GET", "/v1/models")
models = json.loads(body)
check("GET /v1/models", s == 200 and models["object"] == "list" and
      [m["id"] for m in models["data"]] == [expect["model"]], body)

comp = {"model": expect["model"], "prompt": expect["prompt"], "max_tokens": expect["n"],
        "temperature": 0}
s, doc = post("/v1/completions", comp)
ok = s == 200 and doc["object"] == "text_completion" and doc["id"].startswith("cmpl-")
check("completion equals `slmops generate --temp 0`",
      ok and doc["choices"][0]["text"] == expect["generate"], json.dumps(doc))
check("completion usage", ok and doc["usage"]["completion_tokens"] == expect["n"] and
      doc["usage"]["prompt_tokens"] == expect["prompt_tokens"] and
      doc["choices"][0]["finish_reason"] == "length", json.dumps(doc))

chat = {"model": expect["model"], "messages": [{"role": "user", "content": expect["message"]}],
        "max_tokens": expect["n"], "temperature": 0}
s, doc = post("/v1/chat/completions", chat)
ok = s == 200 and doc["object"] == "chat.completion" and doc["id"].startswith("chatcmpl-")
msg = doc["choices"][0]["message"] if ok else {}
check("chat equals `slmops chat --temp 0`",
      ok and msg.get("role") == "assistant" and msg.get("content") == expect["chat"],
      json.dumps(doc))
s, doc = post("/v1/chat/completions", dict(chat, max_completion_tokens=3))
check("max_completion_tokens", s == 200 and doc["usage"]["completion_tokens"] == 3 and
      doc["choices"][0]["finish_reason"] == "length", json.dumps(doc))

# A stop string from the middle of the reply: the text ends just before it.
stop = expect["chat"][10:14]
s, doc = post("/v1/chat/completions", dict(chat, stop=[stop]))
want = expect["chat"][:expect["chat"].index(stop)]
check("stop string", s == 200 and doc["choices"][0]["message"]["content"] == want and
      doc["choices"][0]["finish_reason"] == "stop", json.dumps(doc))

# ---- streams ----

s, chunks, done = stream("/v1/chat/completions", chat)
ok = s == 200 and chunks is not None and done and len(chunks) >= 3
check("chat stream: SSE events ending in [DONE]", ok,
      f"status {s}, done {done}, {len(chunks or [])} chunks")
if ok:
    ids = {c["id"] for c in chunks}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    check("chat stream: one id", len(ids) == 1 and chunks[0]["id"].startswith("chatcmpl-"))
    check("chat stream: role in the first delta only",
          chunks[0]["choices"][0]["delta"].get("role") == "assistant" and
          all("role" not in c["choices"][0]["delta"] for c in chunks[1:]))
    check("chat stream: object", all(c["object"] == "chat.completion.chunk" for c in chunks))
    check("chat stream: text equals the plain answer", text == expect["chat"], repr(text))
    check("chat stream: finish_reason last",
          chunks[-1]["choices"][0]["finish_reason"] == "length" and
          all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]))
s, chunks, done = stream("/v1/chat/completions",
                         dict(chat, stream_options={"include_usage": True}))
check("chat stream: include_usage", s == 200 and done and chunks[-1]["choices"] == [] and
      chunks[-1]["usage"]["completion_tokens"] == expect["n"])

s, chunks, done = stream("/v1/completions", comp)
text = "".join(c["choices"][0]["text"] for c in chunks or [])
check("completion stream equals `slmops generate --temp 0`",
      s == 200 and done and text == expect["generate"], repr(text))

# ---- concurrent streams share the batched steps, each as if alone ----

prompts = expect["prompts"]
results = [None] * len(prompts)


def one(i):
    s, chunks, done = stream("/v1/completions", dict(comp, prompt=prompts[i]["prompt"]))
    results[i] = "".join(c["choices"][0]["text"] for c in chunks or []) if done else None


threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
for t in threads:
    t.start()
for t in threads:
    t.join()
for i, p in enumerate(prompts):
    check(f"concurrent stream {i} equals its text alone", results[i] == p["generate"],
          repr(results[i]))

# ---- a client that leaves mid-stream frees its slot ----

sock = socket.create_connection(("127.0.0.1", port))
body = json.dumps(dict(comp, max_tokens=4000, stream=True)).encode()
sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             b"Authorization: Bearer " + (KEY or "").encode() + b"\r\n"
             b"Content-Type: application/json\r\nContent-Length: " +
             str(len(body)).encode() + b"\r\n\r\n" + body)
first = b""
sock.settimeout(30)
while b"data: " not in first:
    got = sock.recv(4096)
    if not got:
        break
    first += got
check("a stream starts", b"200 OK" in first and b"data: " in first, repr(first[:200]))
busy = health()
sock.close()
idle = None
for _ in range(100):
    h = health()
    if h["slots_processing"] == 0:
        idle = h
        break
    time.sleep(0.02)
check("the slot of a client that left is free again", busy["slots_processing"] == 1 and
      idle is not None and idle["slots_idle"] == expect["parallel"], f"{busy} {idle}")
s, doc = post("/v1/completions", comp)
check("serving goes on after a client left", s == 200 and
      doc["choices"][0]["text"] == expect["generate"])

# ---- malformed requests: status and OpenAI's error body ----

CHAT = "/v1/chat/completions"
msgs = chat["messages"]
bad = [
    ("bad JSON", "POST", CHAT, b'{"messages": [', 400),
    ("invalid UTF-8", "POST", CHAT,
     b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', 400),
    ("body not an object", "POST", CHAT, b'[1, 2]', 400),
    ("messages missing", "POST", CHAT, {"max_tokens": 3}, 400),
    ("messages not an array", "POST", CHAT, {"messages": "hi"}, 400),
    ("messages empty", "POST", CHAT, {"messages": []}, 400),
    ("role missing", "POST", CHAT, {"messages": [{"content": "hi"}]}, 400),
    ("content a number", "POST", CHAT, {"messages": [{"role": "user", "content": 5}]}, 400),
    ("max_tokens a string", "POST", CHAT, {"messages": msgs, "max_tokens": "3"}, 400),
    ("max_tokens negative", "POST", CHAT, {"messages": msgs, "max_tokens": -5}, 400),
    ("temperature a string", "POST", CHAT, {"messages": msgs, "temperature": "hot"}, 400),
    ("temperature too high", "POST", CHAT, {"messages": msgs, "temperature": 7}, 400),
    ("top_p above 1", "POST", CHAT, {"messages": msgs, "top_p": 1.5}, 400),
    ("five stop strings", "POST", CHAT, {"messages": msgs, "stop": ["a", "b", "c", "d", "e"]},
     400),
    ("stop a number", "POST", CHAT, {"messages": msgs, "stop": 3}, 400),
    ("stream a string", "POST", CHAT, {"messages": msgs, "stream": "yes"}, 400),
    ("seed a float", "POST", CHAT, {"messages": msgs, "seed": 1.5}, 400),
    ("n above --max-n", "POST", CHAT, {"messages": msgs, "n": 9}, 400),
    ("unknown field", "POST", CHAT, {"messages": msgs, "temprature": 0}, 400),
    ("unknown model", "POST", CHAT, {"messages": msgs, "model": "gpt-17"}, 404),
    ("prompt missing", "POST", "/v1/completions", {"max_tokens": 3}, 400),
    ("prompt too long for a slot", "POST", "/v1/completions",
     {"prompt": "Once upon a time " * 2000}, 400),
    ("unknown path", "GET", "/v1/nothing", None, 404),
    ("GET on chat", "GET", CHAT, None, 405),
    ("body over 1 MiB", "POST", CHAT, b"{" + b" " * (2 << 20) + b"}", 413),
    ("a 10 MB body", "POST", CHAT, b'{"messages": "' + b"x" * (10 << 20) + b'"}', 413),
    ("an empty body", "POST", CHAT, b"", 400),
    ("duplicate keys", "POST", CHAT, b'{"messages": [], "messages": []}', 400),
    ("JSON nested 100000 deep", "POST", CHAT, b"[" * 100000 + b"]" * 100000, 400),
    ("a NUL escape in a string", "POST", "/v1/completions", b'{"prompt": "a\\u0000b"}', 400),
    ("a lone surrogate escape", "POST", "/v1/completions", b'{"prompt": "a\\ud800b"}', 400),
    ("invalid UTF-8 in a prompt", "POST", "/v1/completions", b'{"prompt": "Once \xc3("}', 400),
    ("max_tokens 0", "POST", CHAT, {"messages": msgs, "max_tokens": 0}, 400),
    ("max_tokens huge", "POST", CHAT, {"messages": msgs, "max_tokens": 10 ** 12}, 400),
    ("max_tokens above the limit", "POST", CHAT, {"messages": msgs, "max_tokens": 100000},
     400),
    ("max_tokens a float", "POST", CHAT, {"messages": msgs, "max_tokens": 2.5}, 400),
    ("max_completion_tokens negative", "POST", CHAT,
     {"messages": msgs, "max_completion_tokens": -1}, 400),
    ("n = 1000", "POST", CHAT, {"messages": msgs, "n": 1000}, 400),
    ("n = 0", "POST", CHAT, {"messages": msgs, "n": 0}, 400),
    ("n a string", "POST", CHAT, {"messages": msgs, "n": "2"}, 400),
    ("a thousand stop strings", "POST", CHAT, {"messages": msgs, "stop": ["x"] * 1000}, 400),
    ("a stop list holding a number", "POST", CHAT, {"messages": msgs, "stop": ["a", 1]}, 400),
    ("temperature negative", "POST", CHAT, {"messages": msgs, "temperature": -1}, 400),
    ("top_p a boolean", "POST", CHAT, {"messages": msgs, "top_p": True}, 400),
    ("presence_penalty 5", "POST", CHAT, {"messages": msgs, "presence_penalty": 5}, 400),
    ("frequency_penalty a string", "POST", CHAT,
     {"messages": msgs, "frequency_penalty": "x"}, 400),
    ("model a number", "POST", CHAT, {"messages": msgs, "model": 7}, 400),
    ("stream_options a string", "POST", CHAT, {"messages": msgs, "stream_options": "x"}, 400),
    ("include_usage a string", "POST", CHAT,
     {"messages": msgs, "stream_options": {"include_usage": "yes"}}, 400),
    ("a message that is a number", "POST", CHAT, {"messages": [1]}, 400),
    ("an image content part", "POST", CHAT, {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}, 400),
    ("prompt an array of numbers", "POST", "/v1/completions", {"prompt": [1, 2]}, 400),
    ("POST on /v1/models", "POST", "/v1/models", {}, 405),
    ("a path with ..", "GET", "/v1/../etc/passwd", None, 404),
    ("no API key", "POST", CHAT, {"messages": msgs}, 401, {"Authorization": None}),
    ("a wrong API key", "POST", CHAT, {"messages": msgs}, 401,
     {"Authorization": "Bearer " + (KEY or "") + "x"}),
    ("the key without Bearer", "POST", CHAT, {"messages": msgs}, 401,
     {"Authorization": KEY or ""}),
    ("an empty key", "GET", "/v1/models", None, 401, {"Authorization": "Bearer "}),
    ("a prefix of the key", "GET", "/v1/models", None, 401,
     {"Authorization": "Bearer " + (KEY or "")[:-1]}),
    ("logprobs a string", "POST", CHAT, {"messages": msgs, "logprobs": "yes"}, 400),
    ("top_logprobs 21", "POST", CHAT, {"messages": msgs, "logprobs": True, "top_logprobs": 21},
     400),
    ("top_logprobs without logprobs", "POST", CHAT, {"messages": msgs, "top_logprobs": 2}, 400),
    ("completions logprobs 6", "POST", "/v1/completions", {"prompt": "a", "logprobs": 6}, 400),
    ("response_format of an unknown type", "POST", CHAT,
     {"messages": msgs, "response_format": {"type": "xml"}}, 400),
    ("json_schema without a name", "POST", CHAT,
     {"messages": msgs, "response_format": {"type": "json_schema", "json_schema": {}}}, 400),
    ("json_schema with $ref", "POST", CHAT, {"messages": msgs, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/x"}}}}, 400),
    ("json_schema nested 40 deep", "POST", CHAT, {"messages": msgs, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": json.loads(
            '{"type":"array","items":' * 40 + '{}' + '}' * 40)}}}, 400),
    ("embeddings without input", "POST", "/v1/embeddings", {"model": expect["model"]}, 400),
    ("embeddings of an empty list", "POST", "/v1/embeddings", {"input": []}, 400),
    ("embeddings of a token outside the vocabulary", "POST", "/v1/embeddings",
     {"input": [1, 2, 10 ** 9]}, 400),
    ("embeddings in hex", "POST", "/v1/embeddings", {"input": "a", "encoding_format": "hex"},
     400),
    ("embeddings of 1000 inputs", "POST", "/v1/embeddings", {"input": ["a"] * 1000}, 400),
    ("embeddings of a too long input", "POST", "/v1/embeddings",
     {"input": "Once upon a time " * 2000}, 400),
    ("embeddings of an unknown model", "POST", "/v1/embeddings", {"input": "a", "model": "x"},
     404),
    ("GET on /v1/embeddings", "GET", "/v1/embeddings", None, 405),
    ("POST on /metrics", "POST", "/metrics", {}, 405),
    ("a Host naming another site", "POST", CHAT, {"messages": msgs}, 403,
     {"Host": "evil.example:80"}),
    ("a Host that is not a name", "GET", "/v1/models", None, 403, {"Host": "[::1"}),
]
if not KEY:
    bad = [b for b in bad if b[4] != 401]
for name, method, path, body, want, *hdrs in bad:
    raw = body if isinstance(body, bytes) else None
    try:
        s, ctype, payload = request(method, path, body if raw is None else None, raw=raw,
                                    headers=hdrs[0] if hdrs else None)
    except OSError as e:
        s, payload = 0, str(e).encode()
    try:
        err = json.loads(payload)["error"]
        shaped = isinstance(err["message"], str) and err["message"] and \
            isinstance(err["type"], str) and "param" in err and "code" in err
    except (ValueError, KeyError, TypeError):
        shaped = False
    check(f"{name}: {want} with an OpenAI error body", s == want and shaped,
          f"status {s}: {payload[:200]!r}")
s, _, body = request("GET", "/health")
check("still serving after the malformed requests", s == 200)
check(f"the catalogue has {len(bad)} malformed or hostile requests", len(bad) >= 40 or not KEY)

# ---- /metrics: Prometheus text that counts what came before ----

s, ctype, body = request("GET", "/metrics")
metrics = {}
for line in body.decode().splitlines():
    if line and not line.startswith("#"):
        name, value = line.rsplit(" ", 1)
        metrics[name] = float(value)
check("GET /metrics: Prometheus text", s == 200 and ctype.startswith("text/plain") and
      b"# TYPE slmops_time_to_first_token_seconds histogram" in body, body[:200])
check("metrics: requests by status", metrics.get('slmops_requests_total{status="200"}', 0) >= 10
      and metrics.get('slmops_requests_total{status="400"}', 0) >= 20, str(metrics)[:300])
check("metrics: tokens, TTFT and inter-token latency observed",
      metrics.get("slmops_generated_tokens_total", 0) >= 100 and
      metrics.get("slmops_prompt_tokens_total", 0) > 0 and
      metrics.get("slmops_time_to_first_token_seconds_count", 0) >= 10 and
      metrics.get('slmops_inter_token_latency_seconds_bucket{le="+Inf"}', 0) >= 50 and
      metrics.get("slmops_inter_token_latency_seconds_count") ==
      metrics.get('slmops_inter_token_latency_seconds_bucket{le="+Inf"}'), str(metrics)[:400])
check("metrics: queue, slots, KV cache", metrics.get("slmops_queue_depth") == 0 and
      metrics.get("slmops_active_slots") == 0 and
      metrics.get("slmops_slots") == expect["parallel"] and
      metrics.get("slmops_kv_cache_cells", 0) > 0 and
      # idle slots keep their cells for the prompt cache: used, never more than all
      0 < metrics.get("slmops_kv_cache_used_cells", -1) <= metrics["slmops_kv_cache_cells"] and
      metrics.get("slmops_prompt_tokens_cached_total", 0) > 0, str(metrics)[:400])

# ---- hostile connections ----


def raw_exchange(data, wait=10.0):
    """Send raw bytes; what comes back until the server closes or wait runs out."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(wait)
    got = b""
    try:
        sock.sendall(data)
        while True:
            part = sock.recv(65536)
            if not part:
                break
            got += part
    except OSError:
        pass
    sock.close()
    return got


got = raw_exchange(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100000 +
                   b"\r\n\r\n")
check("headers over the limit: 431", got.startswith(b"HTTP/1.1 431"), repr(got[:80]))
got = raw_exchange(b"GARBAGE\r\n\r\n")
check("a request line that is not HTTP: 400 or closed", got == b"" or b" 400 " in got[:20],
      repr(got[:80]))
got = raw_exchange(b"GET /health HTTP/1.1\r\n\r\n")
check("HTTP/1.1 without Host: 400", got.startswith(b"HTTP/1.1 400"), repr(got[:80]))
host = expect.get("allowed_host")
if host:
    s, _, body = request("GET", "/v1/models", headers={"Host": host})
    check("a Host named by --allowed-host is served", s == 200, body[:100])
s, _, body = request("GET", "/v1/models", headers={"Host": f"localhost:{port}"})
check("Host localhost is served on loopback", s == 200, body[:100])

# The chat page: served without a key (it asks for one), kept to this origin.
s, ctype, body = request("GET", "/", headers={"Authorization": None})
check("GET /: the chat page, no key needed", s == 200 and ctype.startswith("text/html") and
      b"<title>slmops chat</title>" in body and b"http" not in body.split(b"<script>")[0],
      f"{s} {ctype}")

# CORS only for the --cors-origin origin; its preflight needs no key.
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
c.request("OPTIONS", "/v1/chat/completions", headers={
    "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type"})
r = c.getresponse()
r.read()
check("CORS preflight from the allowed origin: 204", r.status == 204 and
      r.getheader("Access-Control-Allow-Origin") == "http://app.example" and
      "POST" in (r.getheader("Access-Control-Allow-Methods") or ""), str(r.getheaders()))
c.close()
for origin, want in (("http://app.example", "http://app.example"), ("http://evil.example", None)):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/v1/models", headers={"Origin": origin,
                                             "Authorization": "Bearer " + (KEY or "")})
    r = c.getresponse()
    r.read()
    check(f"CORS header for {origin}: {want}",
          r.status == 200 and r.getheader("Access-Control-Allow-Origin") == want)
    c.close()

# Slowloris: a header line every half second never finishes a request; the request
# timeout closes the connection while other clients are served.
timeout = expect.get("request_timeout")
if timeout:
    sock = socket.create_connection(("127.0.0.1", port))
    start = time.time()
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    closed = False
    while time.time() - start < timeout + 5 and not closed:
        try:
            sock.sendall(b"X-Slow: 1\r\n")
            sock.settimeout(0.5)
            closed = sock.recv(4096) == b""
        except socket.timeout:
            pass
        except OSError:
            closed = True
    took = time.time() - start
    sock.close()
    check(f"a slowloris connection is closed after the request timeout ({timeout} s)",
          closed and timeout - 0.5 <= took <= timeout + 2.5, f"closed {closed} after {took:.1f} s")
s, _, body = request("GET", "/health")
check("still serving after the hostile connections", s == 200)

sys.exit(1 if failures else 0)
