#!/usr/bin/env python3
"""The demo's closing table: teacher versus student on the held-out prompts (accuracy,
decode time per token, peak RSS while generating, file size), from the files demo.sh wrote."""
import json
import os
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def steps(outdir):
    rows = {}
    with open(os.path.join(outdir, "steps.tsv"), encoding="utf-8") as f:
        for line in f:
            name, wall, cpu, rss = line.rstrip("\n").split("\t")
            rows[name] = (float(wall), int(rss), float(cpu))
    return rows


def decode_ms(outdir, who):
    """Milliseconds per generated token of bench's tg test."""
    for r in load(os.path.join(outdir, f"bench-{who}.out"))["results"]:
        if r["test"].startswith("tg"):
            return r["avg_ms"] / r["n_tokens"]
    sys.exit(f"demo-table.py: {outdir}/bench-{who}.out has no tg result")


def peak_rss_kib(outdir, who):
    """generate's own peak RSS (VmHWM) while it wrote 64 tokens."""
    rss = load(os.path.join(outdir, f"generate-{who}.out"))["timings"].get("peak_rss_bytes")
    if not rss:
        sys.exit(f"demo-table.py: {outdir}/generate-{who}.out has no timings.peak_rss_bytes")
    return rss // 1024


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: demo-table.py OUTDIR TEACHER STUDENT THREADS")
    outdir, teacher, student, threads = sys.argv[1:]
    st = steps(outdir)
    m = {}
    for who, path in (("teacher", teacher), ("student", student)):
        ev = load(os.path.join(outdir, f"eval-{who}.json"))
        m[who] = {
            "file": path,
            "bytes": os.path.getsize(path),
            "accuracy": ev["accuracy"], "correct": ev["correct"], "n": ev["n"],
            "ci95": ev["ci95"],
            "decode_ms_per_token": decode_ms(outdir, who),
            "peak_rss_kib": peak_rss_kib(outdir, who),
        }
    t, s = m["teacher"], m["student"]
    summary = {
        "threads": int(threads), "teacher": t, "student": s,
        "accuracy_retained": s["accuracy"] / t["accuracy"] if t["accuracy"] else None,
        "decode_time_saved": 1 - s["decode_ms_per_token"] / t["decode_ms_per_token"],
        "memory_saved": 1 - s["peak_rss_kib"] / t["peak_rss_kib"],
        "size_saved": 1 - s["bytes"] / t["bytes"],
        "steps": {k: {"seconds": v[0], "cpu_seconds": v[2], "peak_rss_kib": v[1]}
                  for k, v in st.items()},
        "targets": {"accuracy_retained": 0.92, "decode_time_saved": 0.85, "memory_saved": 0.90},
    }
    tmp = os.path.join(outdir, "summary.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(outdir, "summary.json"))

    def pct(x):
        return f"{100 * x:.1f}%"
    print(f"\nheld-out prompts: {t['n']}; threads: {threads}")
    print(f"{'':24}{'teacher':>16}{'student':>16}{'student vs teacher':>22}")
    acc = lambda d: f"{d['accuracy']:.3f} ({d['correct']}/{d['n']})"
    rows = [
        ("accuracy", acc(t), acc(s), f"{pct(summary['accuracy_retained'])} retained"),
        ("  95% interval", "%.3f-%.3f" % tuple(t["ci95"]), "%.3f-%.3f" % tuple(s["ci95"]), ""),
        ("decode ms/token", f"{t['decode_ms_per_token']:.2f}", f"{s['decode_ms_per_token']:.2f}",
         f"{pct(summary['decode_time_saved'])} less"),
        ("peak RSS generating", f"{t['peak_rss_kib'] / 1024:.1f} MiB",
         f"{s['peak_rss_kib'] / 1024:.1f} MiB", f"{pct(summary['memory_saved'])} less"),
        ("file size", f"{t['bytes'] / 2**20:.1f} MiB", f"{s['bytes'] / 2**20:.1f} MiB",
         f"{pct(summary['size_saved'])} less"),
    ]
    for r in rows:
        print(f"{r[0]:24}{r[1]:>16}{r[2]:>16}{r[3]:>22}")
    targets = [("accuracy retained", summary["accuracy_retained"] or 0, 0.92),
               ("decode time saved", summary["decode_time_saved"], 0.85),
               ("memory saved", summary["memory_saved"], 0.90)]
    print("targets: " + "; ".join(f"{n} {pct(v)} (>= {pct(w)}: {'met' if v >= w else 'MISSED'})"
                                  for n, v, w in targets))
    print("step wall seconds (cpu seconds): " +
          ", ".join(f"{k} {v[0]:.0f} ({v[2]:.0f})" for k, v in st.items()) +
          f"; total {sum(v[0] for v in st.values()):.0f} "
          f"({sum(v[2] for v in st.values()):.0f} cpu)")
    print(f"summary: {os.path.join(outdir, 'summary.json')}")


if __name__ == "__main__":
    main()
