"""Headless Chromium driven through chromedriver's WebDriver protocol (HTTP and JSON,
so the standard library is enough), and the TAP-style checks of the browser tests
(tests/serve/chat_page.py, tests/pipeline/report_page.py)."""
import base64
import json
import socket
import subprocess
import time
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Checks:
    """`ok - NAME` or `not ok - NAME: DETAIL` lines, and the exit status they add up to."""

    def __init__(self):
        self.failures = 0

    def __call__(self, name, cond, detail=""):
        print(f"ok - {name}" if cond else f"not ok - {name}: {detail}")
        self.failures += not cond

    def status(self):
        return 1 if self.failures else 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Browser:
    """One chromedriver and one Chromium session of the given window size; `close`
    ends both (use it in a finally)."""

    def __init__(self, driver_bin, chromium, width, height, console_log=False):
        port = free_port()
        self.drv = subprocess.Popen([driver_bin, f"--port={port}"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        self.session = None
        try:
            self._start(chromium, width, height, console_log)
        except Exception:
            self.drv.terminate()
            self.drv.wait()
            raise

    def _start(self, chromium, width, height, console_log):
        for _ in range(100):
            try:
                self.call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--window-size={width},{height}", "--no-first-run"]}}
        if console_log:
            caps["goog:loggingPrefs"] = {"browser": "ALL"}
        sid = self.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        self.session = f"/session/{sid}"

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())["value"]

    def s(self, method, path, body=None):
        """A command of this session: path relative to /session/ID."""
        return self.call(method, self.session + path, body)

    def open(self, url):
        self.s("POST", "/url", {"url": url})
        return self.s("GET", "/title")

    def js(self, script):
        return self.s("POST", "/execute/sync", {"script": script, "args": []})

    def el(self, css):
        return self.s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def els(self, css):
        return [e[ELEMENT] for e in self.s("POST", "/elements",
                                           {"using": "css selector", "value": css})]

    def wait(self, script, seconds=30):
        """The script's first truthy value within seconds, else None."""
        end = time.time() + seconds
        while time.time() < end:
            got = self.js(script)
            if got:
                return got
            time.sleep(0.1)
        return None

    def screenshot(self, element=None):
        path = f"/element/{element}/screenshot" if element else "/screenshot"
        return base64.b64decode(self.s("GET", path))

    def keep_screenshot(self, path, check, what):
        png = self.screenshot()
        with open(path, "wb") as f:
            f.write(png)
        check(f"a screenshot of {what} is kept", png[:8] == b"\x89PNG\r\n\x1a\n" and
              len(png) > 5000, f"{len(png)} bytes")

    def close(self):
        try:
            if self.session:
                self.call("DELETE", self.session)
        except OSError:
            pass
        self.drv.terminate()
        self.drv.wait()
