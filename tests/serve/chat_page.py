#!/usr/bin/env python3
"""Drives the chat page of a running `slmops serve` in headless Chromium through
chromedriver's WebDriver protocol (HTTP and JSON, so the standard library is enough):
load the page, give the API key, send a message, wait for the streamed reply, check
it against the CLI's greedy reply and the tokens/s shown, and keep a screenshot.
usage: chat_page.py CHROMEDRIVER CHROMIUM PAGE_URL KEY EXPECTED_REPLY_FILE N SCREENSHOT"""
import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request

driver_bin, chromium, url, key, expect_file, n, shot = sys.argv[1:8]
expect = open(expect_file, encoding="utf-8").read()
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
failures = 0


def check(name, cond, detail=""):
    global failures
    print(f"ok - {name}" if cond else f"not ok - {name}: {detail}")
    failures += not cond


s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
drv = subprocess.Popen([driver_bin, f"--port={port}"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}"


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["value"]


try:
    for _ in range(100):
        try:
            call("GET", "/status")
            break
        except OSError:
            time.sleep(0.1)
    sid = call("POST", "/session", {"capabilities": {"alwaysMatch": {
        "browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=900,640", "--no-first-run"]}}}})["sessionId"]
    S = f"/session/{sid}"

    def el(css):
        return call("POST", S + "/element", {"using": "css selector", "value": css})[ELEMENT]

    def js(script):
        return call("POST", S + "/execute/sync", {"script": script, "args": []})

    def type_into(css, text, clear=True):
        e = el(css)
        if clear:
            call("POST", f"{S}/element/{e}/clear", {})
        call("POST", f"{S}/element/{e}/value", {"text": text})

    def wait(script, seconds=30):
        end = time.time() + seconds
        while time.time() < end:
            got = js(script)
            if got:
                return got
            time.sleep(0.1)
        return None

    call("POST", S + "/url", {"url": url})
    check("the page loads", call("GET", S + "/title") == "slmops chat")
    check("without the key it says one is needed",
          wait("return document.getElementById('rate').textContent == 'API key needed'"))
    type_into("#key", key + "\n")
    js("document.getElementById('key').dispatchEvent(new Event('change'))")
    models = wait("const s = document.getElementById('model');"
                  "return s.options.length ? [...s.options].map(o => o.value) : null")
    check("with the key it lists the models", models == ["stories260K"], str(models))
    type_into("#max-tokens", n)
    type_into("#temperature", "0")
    type_into("#input", "Hello there")
    call("POST", f"{S}/element/{el('#send')}/click", {})
    done = wait("const b = document.querySelectorAll('.assistant');"
                "return b.length && b[b.length - 1].dataset.done ? b[b.length - 1].textContent"
                " : null", 60)
    check("the streamed reply is the greedy one `slmops chat` gives", done == expect,
          f"{done!r} != {expect!r}")
    rate = js("return document.getElementById('rate').textContent")
    check("tokens/s are shown", rate.startswith(f"{n} tokens, ") and "tok/s" in rate, rate)
    errors = js("return document.querySelectorAll('.error').length")
    check("no error bubble", errors == 0, str(errors))
    png = base64.b64decode(call("GET", S + "/screenshot"))
    with open(shot, "wb") as f:
        f.write(png)
    check("a screenshot of the exchange is kept", png[:8] == b"\x89PNG\r\n\x1a\n" and
          len(png) > 5000, f"{len(png)} bytes")
    call("DELETE", S)
except Exception as e:   # the browser or driver failing is a failure, named
    check("driving Chromium", False, f"{type(e).__name__}: {e}")
finally:
    drv.terminate()
    drv.wait()
sys.exit(1 if failures else 0)
