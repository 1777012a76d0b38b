#!/usr/bin/env python3
# Validate slmops plugin manifests against docs/manifest.schema.json.
# Exit 0 when every file given with --valid passes and every --invalid one fails.
"""Usage: validate-manifests.py --schema S [--ops-source ops.c]
          [--valid FILE ...] [--invalid FILE ...]"""

import argparse
import json
import os
import re
import sys

import jsonschema


def load_json(path):
    # Duplicate keys are an error for the registry (jansson JSON_REJECT_DUPLICATES),
    # so they are here too.
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise ValueError("duplicate key(s): " + ", ".join(sorted(dup)))
        return dict(pairs)

    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=no_duplicates)


def known_ops(ops_source):
    # The op table in core/util/ops.c is the one spelling of op names.
    if not ops_source:
        return None
    with open(ops_source, encoding="utf-8") as f:
        return set(re.findall(r'\[SLM_OP_[A-Z0-9_]+\]\s*=\s*"([a-z0-9_]+)"', f.read()))


def problems(path, validator, ops):
    try:
        doc = load_json(path)
    except (OSError, ValueError) as e:
        return ["not valid JSON: %s" % e]
    found = ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(top)", e.message)
             for e in validator.iter_errors(doc)]
    if not found and ops is not None and doc.get("kind") == "backend":
        for op in doc["provides"]["ops"]:
            if op not in ops:
                found.append("provides/ops: unknown op '%s'" % op)
    if not found and doc.get("kind") == "trainer":
        # uniqueItems cannot see "lora" and {"name": "lora", ...} as the same method.
        names = [m["name"] if isinstance(m, dict) else m for m in doc["provides"]["methods"]]
        for name in sorted({n for n in names if names.count(n) > 1}):
            found.append("provides/methods: method '%s' is listed twice" % name)
    return found


def expected_error(path):
    # A broken case must fail for its own reason, not an incidental one:
    # expected.txt beside it maps "case.json" to a substring of the error.
    table = os.path.join(os.path.dirname(path), "expected.txt")
    try:
        with open(table, encoding="utf-8") as f:
            for line in f:
                name, _, want = line.rstrip("\n").partition(" ")
                if name == os.path.basename(path):
                    return want.strip()
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schema", required=True)
    ap.add_argument("--ops-source")
    ap.add_argument("--valid", nargs="*", default=[])
    ap.add_argument("--invalid", nargs="*", default=[])
    args = ap.parse_args()

    schema = load_json(args.schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    ops = known_ops(args.ops_source)

    failed = 0
    for path in args.valid:
        errs = problems(path, validator, ops)
        if errs:
            failed += 1
            for e in errs:
                print("FAIL %s: %s" % (path, e))
        else:
            print("ok   %s: valid" % path)
    for path in args.invalid:
        errs = problems(path, validator, ops)
        want = expected_error(path)
        if not errs:
            failed += 1
            print("FAIL %s: accepted, but it is broken on purpose" % path)
        elif want and not any(want in e for e in errs):
            failed += 1
            print("FAIL %s: rejected for the wrong reason (%s), expected '%s'"
                  % (path, "; ".join(errs), want))
        else:
            print("ok   %s: rejected (%s)" % (path, errs[0]))
    print("%d manifest(s) checked, %d not as expected" % (len(args.valid) + len(args.invalid), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
