#!/usr/bin/env python3
"""Opens a pipeline's report.html in headless Chromium (through tests/lib/webdriver.py)
and checks that it draws: the models table has a row per model, each chart's
screenshot holds its series' colours (not blank pixels), nothing was fetched from the
network and the console has no errors.
usage: report_page.py CHROMEDRIVER CHROMIUM REPORT_HTML N_MODELS N_CURVES SHOT"""
import json
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from webdriver import Browser, Checks  # noqa: E402

driver_bin, chromium, report, n_models, n_curves, shot = sys.argv[1:7]
n_models, n_curves = int(n_models), int(n_curves)
check = Checks()


def png_pixels(data):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), f"PNG depth {depth} colour type {ctype}"
            bpp = 4 if ctype == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride = zlib.decompress(idat), w * bpp
    prev, rows = bytearray(stride), []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def near(px, rgb, tol=40):
    return all(abs(a - b) <= tol for a, b in zip(px, rgb))


b = None
try:
    b = Browser(driver_bin, chromium, 1100, 1400, console_log=True)
    js = b.js
    title = b.open("file://" + report)
    check("the report loads", title.startswith("slmops pipeline: "), title)
    rows = js("return document.querySelectorAll('#models tbody tr').length")
    check(f"the models table has {n_models} rows", rows == n_models, str(rows))
    heads = js("return [...document.querySelectorAll('#models thead th')].map(t => t.textContent)")
    check("the table has parameters, file size, peak RSS, tok/s, perplexity and accuracy",
          all(any(k in h for h in heads) for k in ("parameters", "file", "peak RSS", "prefill",
                                                     "decode", "perplexity", "accuracy")), str(heads))
    cells = js("return [...document.querySelectorAll('#models tbody td')].map(t => t.textContent)")
    check("every cell of the table holds a figure", cells and all(c.strip() not in ("", "\u2013")
                                                                  for c in cells), str(cells))
    remote = js("return [...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src')"
                " || e.getAttribute('href')).filter(u => /^(https?:)?\\/\\//.test(u))")
    check("nothing is loaded from the network", remote == [], str(remote))
    resources = js("return performance.getEntriesByType('resource').map(r => r.name)")
    check("the page fetches no resources", resources == [], str(resources))
    curves = b.els("svg.curve")
    check(f"{n_curves} loss chart(s)", len(curves) == n_curves, str(len(curves)))
    charts = b.els("svg#size-quality") + curves
    for i, e in enumerate(charts):
        png = b.screenshot(e)
        w, h, px = png_pixels(png)
        flat = [p for row in px for p in row]
        inked = sum(1 for p in flat if not near(p, (255, 255, 255), 8) and not near(p, (248, 250, 252), 6))
        # series pixels inside the plot area, the legend's corner left out (a chart whose
        # lines and points are missing still has its legend text in their colours)
        plot = [p for y, row in enumerate(px) if 16 <= y <= 216
                for x, p in enumerate(row) if 56 <= x <= (560 if i == 0 else 370)]
        blue = sum(1 for p in plot if near(p, (37, 99, 235)))
        orange = sum(1 for p in plot if near(p, (234, 88, 12)))
        name = "the size-quality chart" if i == 0 else f"loss chart {i}"
        check(f"{name} is drawn ({w}x{h}, {inked} inked pixels)", inked > w * h // 50,
              f"only {inked} of {w * h} pixels differ from the background")
        check(f"{name} shows its series ({blue} blue, {orange} orange pixels)",
              blue > 20 and (i == 0 or orange > 20), "series colours missing")
    logs = b.s("POST", "/se/log", {"type": "browser"})
    errors = [l for l in logs if l.get("level") == "SEVERE"]
    check("no console errors", errors == [], json.dumps(errors))
    b.keep_screenshot(shot, check, "the report")
except Exception as e:   # the browser or driver failing is a failure, named
    check("driving Chromium", False, f"{type(e).__name__}: {e}")
finally:
    if b:
        b.close()
sys.exit(check.status())
