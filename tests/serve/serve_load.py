#!/usr/bin/env python3
"""Load on a running `slmops serve`: C concurrent streaming clients, each sending R
requests of mixed lengths (chat and completions, some with n=2, stop strings,
include_usage) one after another; every answer must be a well-formed SSE stream
that ends in [DONE] with a finish reason per choice and usage that adds up. Prints
the counts and aggregate tokens/s; exits 1 on any error.
usage: serve_load.py PORT CLIENTS REQUESTS [KEY]"""
import http.client
import json
import random
import sys
import threading
import time

port, clients, per_client = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
key = sys.argv[4] if len(sys.argv) > 4 else None
prompts = ["Once upon a time", "The cat sat on the mat and", "Lily and Tom went to the park.",
           "One day, a little bird", "Tim had a red ball. He", "The sun was"]
lock = threading.Lock()
errors, done, tokens = [], 0, 0


def one(rng):
    chat = rng.random() < 0.5
    n = 2 if rng.random() < 0.2 else 1
    body = {"max_tokens": rng.choice([4, 16, 48, 96]), "temperature": rng.choice([0, 0.8]),
            "stream": True, "n": n, "stream_options": {"include_usage": True}}
    if rng.random() < 0.2:
        body["stop"] = ["."]
    p = rng.choice(prompts)
    if chat:
        body["messages"] = [{"role": "user", "content": p}]
    else:
        body["prompt"] = p
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", "/v1/chat/completions" if chat else "/v1/completions", json.dumps(body), h)
    r = c.getresponse()
    payload = r.read().decode()
    c.close()
    if r.status != 200:
        return f"status {r.status}: {payload[:200]}", 0
    blocks = [b for b in payload.split("\n\n") if b.strip()]
    if not blocks or blocks[-1] != "data: [DONE]":
        return f"no [DONE] at the end: {payload[-200:]!r}", 0
    chunks = [json.loads(b[6:]) for b in blocks[:-1]]
    if any("error" in ch for ch in chunks):
        return f"an error event: {payload[-300:]!r}", 0
    finish = {ch["choices"][0]["index"]: ch["choices"][0]["finish_reason"]
              for ch in chunks if ch["choices"] and ch["choices"][0]["finish_reason"]}
    usage = chunks[-1].get("usage")
    if set(finish) != set(range(n)) or not usage:
        return f"finish reasons {finish}, usage {usage}", 0
    if len({ch["id"] for ch in chunks}) != 1:
        return "several ids in one stream", 0
    if usage["completion_tokens"] > n * body["max_tokens"]:
        return f"usage {usage} over max_tokens {body['max_tokens']} x {n}", 0
    return None, usage["completion_tokens"]


def client(i):
    global done, tokens
    rng = random.Random(1000 + i)
    for _ in range(per_client):
        try:
            err, t = one(rng)
        except Exception as e:   # a broken connection is an error like any other
            err, t = f"{type(e).__name__}: {e}", 0
        with lock:
            done += 1
            tokens += t
            if err:
                errors.append(err)


start = time.time()
threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.time() - start
print(f"{clients} streaming clients x {per_client} requests: {done} done, {len(errors)} errors, "
      f"{tokens} tokens in {took:.1f} s ({tokens / took:.0f} tokens/s)")
for e in errors[:5]:
    print("  error:", e)
sys.exit(1 if errors or done != clients * per_client else 0)
