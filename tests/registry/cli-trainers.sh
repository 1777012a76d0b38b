#!/bin/sh
# Issue 8: `slmops plugins` lists trainer plugins with their methods, the
# trainer manifest it loads is one the schema accepts, interface versions are
# negotiated (a v1 trainer loads, a v3 one answering past the host's offer does
# not, one reading the offer does), and a manifest of an unknown kind is disabled
# alone with a reason naming the kind and the file; every time it exits 0.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
needs_python jsonschema json
libs="$top_builddir/tests/registry/.libs"
dir="$work/plugins"
mkdir "$dir"
SLMOPS_PLUGIN_PATH=$dir XDG_CACHE_HOME="$work/cache"
export SLMOPS_PLUGIN_PATH XDG_CACHE_HOME

described='[{"name": "fake-full", "description": "every weight trains"}, {"name": "fake-lora", "description": "low-rank adapters"}]'
trainer() { # NAME [METHODS]
    methods=${2:-$described}
    cat >"$dir/$1.json" <<JSON
{
  "file_format_version": "1.3.0",
  "name": "$1",
  "kind": "trainer",
  "version": "1.0.0",
  "abi_version": 1,
  "library_path": "$libs/$1.so",
  "description": "CLI test trainer",
  "provides": {"methods": $methods}
}
JSON
}
trainer fake-trainer
trainer fake-trainer-v1 '["fake-full", "fake-lora"]'
trainer fake-trainer-v3
trainer fake-trainer-v3-negotiating
cat >"$dir/widget.json" <<JSON
{
  "file_format_version": "1.0.0", "name": "widget", "kind": "widget", "version": "1.0.0",
  "abi_version": 1, "library_path": "$libs/fake-good.so", "description": "unknown kind",
  "provides": {"extensions": [".w"], "read": true, "write": false}
}
JSON

# The manifests the registry is about to load are ones the schema accepts.
if "${PYTHON3:-python3}" "$top_srcdir/tests/packaging/validate-manifests.py" \
        --schema "$top_srcdir/docs/manifest.schema.json" \
        --valid "$dir"/fake-trainer*.json --invalid "$dir/widget.json" >"$work/schema" 2>&1; then
    ok "the schema accepts the trainer manifests and refuses the unknown kind"
else
    not_ok "schema:"; sed 's/^/    /' "$work/schema"
fi

"$slmops" plugins >"$work/table" 2>"$work/err"; rc=$?
"$slmops" plugins --json >"$work/json" 2>/dev/null; rc_json=$?
[ "$rc" -eq 0 ] && [ "$rc_json" -eq 0 ] && ok "plugins exits 0" ||
    not_ok "plugins exited $rc / $rc_json"

row() { # NAME STATE [REASON]: the table's row of NAME is in STATE (with REASON)
    line=$(grep -E "^$1 +[a-z]+ " "$work/table")
    if printf '%s\n' "$line" | grep -E "^$1 +[a-z]+ .* $2( |\$)" >/dev/null &&
       { [ -z "${3:-}" ] || printf '%s\n' "$line" | grep -F -- "$3" >/dev/null; }; then
        ok "$1 is $2${3:+: $3}"
    else
        not_ok "$1 is not $2${3:+ with '$3'}:"; sed 's/^/    /' "$work/table"
    fi
}
row fake-trainer loaded
row fake-trainer-v1 loaded
row fake-trainer-v3 disabled "trainer interface version 3 is newer than this host reads (1..2)"
row fake-trainer-v3-negotiating loaded
why='field "kind" is "widget", expected backend, quantizer, trainer or format'
row widget disabled "$why"
grep -F "$dir/widget.json: $why" "$work/err" >/dev/null && ok "the warning names the manifest" ||
    { not_ok "no warning naming $dir/widget.json:"; sed 's/^/    /' "$work/err"; }

# The row of fake-trainer is followed (manifest, library) by its methods.
awk '/^fake-trainer +trainer/ {n = NR} n && NR == n + 3 {print; exit}' "$work/table" >"$work/methods"
grep -Fx "    methods: fake-full (every weight trains), fake-lora (low-rank adapters)" \
    "$work/methods" >/dev/null && ok "the table lists the methods" ||
    { not_ok "methods line:"; sed 's/^/    /' "$work/table"; }

if "${PYTHON3:-python3}" - "$work/json" <<'PY'
import json, sys
rows = {r["name"]: r for r in json.load(open(sys.argv[1]))["plugins"]}
t = rows["fake-trainer"]
assert t["kind"] == "trainer" and t["state"] == "loaded", t
assert [m["name"] for m in t["provides"]["methods"]] == ["fake-full", "fake-lora"], t
assert t["summary"].startswith("methods: fake-full (every weight trains)"), t
assert rows["widget"]["state"] == "disabled" and "widget" in rows["widget"]["reason"], rows
PY
then ok "--json gives each trainer's methods"; else not_ok "--json"; cat "$work/json"; fi
finish
