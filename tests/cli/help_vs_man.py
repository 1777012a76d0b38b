#!/usr/bin/env python3
"""Issue 7, item 20: every verb's --help and its section of slmops(1) list the same
options, both ways, and refer to the same shared option groups.
usage: help_vs_man.py SLMOPS MANPAGE"""
import re
import subprocess
import sys

slmops, manpage = sys.argv[1], sys.argv[2]
failures = []


def spellings(text):
    """Every option spelling in a line of roff or of help text."""
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text.replace("\\-", "-")))


def man_sections():
    """{title: (options, body text)} for each .SS of the OPTIONS section."""
    roff = open(manpage, encoding="utf-8").read()
    block = roff.split("\n.SH OPTIONS\n", 1)[1].split("\n.SH ", 1)[0]
    sections = {}
    for chunk in block.split("\n.SS ")[1:]:
        title, _, body = chunk.partition("\n")
        lines = body.split("\n")
        opts = set()
        for i, line in enumerate(lines):
            if line.startswith(".TP") and i + 1 < len(lines):
                opts |= spellings(lines[i + 1])
        prose = " ".join(l for l in lines if not l.startswith(".")).lower()
        sections[title.strip('"').lower()] = (opts, prose)
    return sections


def help_groups(verb):
    """{group title: options} from `slmops VERB --help`."""
    out = subprocess.run([slmops, verb, "--help"], capture_output=True, text=True)
    if out.returncode != 0:
        failures.append(f"{verb} --help exits {out.returncode}")
    groups, current = {}, None
    for line in out.stdout.splitlines():
        m = re.match(r"^([A-Z][\w ]*)options:$|^(Options):$", line)
        if m:
            current = (m.group(1) or "").strip().lower() + " options" if m.group(1) else ""
            groups[current] = set()
            continue
        m = re.match(r"^  (-[\w-]+(?:, -[\w-]+)*)", line)
        if m and current is not None:
            groups[current] |= set(m.group(1).split(", "))
    for g in groups.values():
        g -= {"-h", "--help"}
    return groups


def verbs():
    out = subprocess.run([slmops, "--help"], capture_output=True, text=True).stdout
    names = re.findall(r"^  ([a-z]+) ", out.split("Verbs:", 1)[1], re.M)
    return [v for v in names if v != "help"]


sections = man_sections()
shared = {t for t in sections if t.endswith(" options")}
for verb in verbs():
    if verb not in sections:
        failures.append(f"{verb}: no '.SS {verb}' section in the man page's OPTIONS")
        continue
    man_opts, prose = sections[verb]
    groups = help_groups(verb)
    own = groups.pop("", set())
    for extra in sorted(own - man_opts):
        failures.append(f"{verb}: {extra} is in --help but not in the man page")
    for extra in sorted(man_opts - own):
        failures.append(f"{verb}: {extra} is in the man page but not in --help")
    referred = {g for g in shared if g in prose}
    for g in sorted(set(groups) - referred):
        failures.append(f"{verb}: --help has the {g}; its man section does not name them")
    for g in sorted(referred - set(groups)):
        failures.append(f"{verb}: the man page names the {g}; --help has no such group")
    for g in sorted(set(groups) & referred):
        a, b = groups[g], sections[g][0]
        for extra in sorted(a - b):
            failures.append(f"{verb}: {g}: {extra} is in --help but not in the man page")
        for extra in sorted(b - a):
            failures.append(f"{verb}: {g}: {extra} is in the man page but not in --help")
    if not failures:
        print(f"ok - {verb}: {len(own)} options, groups {sorted(groups)}")
for f in failures:
    print("not ok -", f)
sys.exit(1 if failures else 0)
