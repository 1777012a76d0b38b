"""What the bench/ scripts share: options, the slmops build they time, running a
command or dying with its error, and CPU feature probes."""
import os
import subprocess
import sys

SRCDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def die(prog, msg):
    sys.stderr.write("%s: %s\n" % (prog, msg))
    sys.exit(1)


def parse_args(argv, spec, defaults, doc, prog, flags=None):
    """spec: option -> (key, type); flags: option -> (key, value). -h prints doc."""
    o, flags, i = dict(defaults), flags or {}, 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(doc)
            sys.exit(0)
        if a in flags:
            o[flags[a][0]] = flags[a][1]
            i += 1
            continue
        if a not in spec or i + 1 >= len(argv):
            die(prog, "unknown option or missing value: %s (see --help)" % a)
        key, kind = spec[a]
        try:
            o[key] = kind(argv[i + 1])
        except ValueError:
            die(prog, "%s: not a valid value: %r" % (a, argv[i + 1]))
        i += 2
    return o


def build_dir(build, prog, extra=()):
    """The slmops build folder to time: `build`, else the current folder when it is
    one, else <source>/build-bench (configured when new); brought up to date."""
    d = build
    if not d:
        here = os.getcwd()
        if os.path.isfile("config.status") and "slmops" in open("config.status").read():
            d = here
        else:
            d = os.path.join(SRCDIR, "build-bench")
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    if not os.path.isfile(os.path.join(d, "Makefile")):
        print("%s: configuring %s" % (prog, d), flush=True)
        subprocess.run([os.path.join(SRCDIR, "configure"), "--quiet"], cwd=d, check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["make", "-s", "-C", d, "-j2", "bench-deps", "slmops"] + list(extra), check=True)
    return d


def slmops_env(build):
    env = dict(os.environ)
    env["SLMOPS_PLUGIN_PATH"] = os.path.join(build, "manifests", "uninstalled")
    return env


def run(cmd, env, prog, **kw):
    """stdout of cmd; on failure, die with its stderr."""
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, **kw)
    if r.returncode != 0:
        die(prog, "%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r.stdout


def cpu_has(flag):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return flag in line.split()
    except OSError:
        pass
    return False
