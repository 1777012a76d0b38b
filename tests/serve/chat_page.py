#!/usr/bin/env python3
"""Drives the chat page of a running `slmops serve` in headless Chromium (through
tests/lib/webdriver.py): load the page, give the API key, send a message, wait for
the streamed reply, check it against the CLI's greedy reply and the tokens/s shown,
and keep a screenshot.
usage: chat_page.py CHROMEDRIVER CHROMIUM PAGE_URL KEY EXPECTED_REPLY_FILE N SCREENSHOT"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from webdriver import Browser, Checks  # noqa: E402

driver_bin, chromium, url, key, expect_file, n, shot = sys.argv[1:8]
expect = open(expect_file, encoding="utf-8").read()
check = Checks()
b = None
try:
    b = Browser(driver_bin, chromium, 900, 640)

    def type_into(css, text, clear=True):
        e = b.el(css)
        if clear:
            b.s("POST", f"/element/{e}/clear", {})
        b.s("POST", f"/element/{e}/value", {"text": text})

    check("the page loads", b.open(url) == "slmops chat")
    check("without the key it says one is needed",
          b.wait("return document.getElementById('rate').textContent == 'API key needed'"))
    # The key's change event can fire more than once (Enter, then blur): the replies
    # to /v1/models are held until three are in flight and then let go together, so
    # the calls interleave as they can on a loaded machine; the list must come out once.
    b.js("const real = window.fetch; let held = [];"
         "window.fetch = (...a) => real(...a).then(r => held === null ? r : new Promise(ok => {"
         "  held.push(() => ok(r));"
         "  if (held.length === 3) { held.forEach(go => go()); held = null; }"
         "}));")
    type_into("#key", key + "\n")
    b.js("for (let i = 0; i < 3; i++)"
         " document.getElementById('key').dispatchEvent(new Event('change'))")
    models = b.wait("const s = document.getElementById('model');"
                    "return s.options.length ? [...s.options].map(o => o.value) : null")
    check("with the key it lists the models", models == ["stories260K"], str(models))
    time.sleep(0.5)   # any late call lands
    models = b.js("return [...document.getElementById('model').options].map(o => o.value)")
    check("the list comes out once, whatever the events", models == ["stories260K"], str(models))
    type_into("#max-tokens", n)
    type_into("#temperature", "0")
    type_into("#input", "Hello there")
    b.s("POST", f"/element/{b.el('#send')}/click", {})
    done = b.wait("const b = document.querySelectorAll('.assistant');"
                  "return b.length && b[b.length - 1].dataset.done ? b[b.length - 1].textContent"
                  " : null", 60)
    check("the streamed reply is the greedy one `slmops chat` gives", done == expect,
          f"{done!r} != {expect!r}")
    rate = b.js("return document.getElementById('rate').textContent")
    check("tokens/s are shown", rate.startswith(f"{n} tokens, ") and "tok/s" in rate, rate)
    errors = b.js("return document.querySelectorAll('.error').length")
    check("no error bubble", errors == 0, str(errors))
    b.keep_screenshot(shot, check, "the exchange")
except Exception as e:   # the browser or driver failing is a failure, named
    check("driving Chromium", False, f"{type(e).__name__}: {e}")
finally:
    if b:
        b.close()
sys.exit(check.status())
