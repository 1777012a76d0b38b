#!/usr/bin/env python3
"""The oracle of recipe-schema.sh: "valid" or "invalid: POINTER: message" for each recipe
given, by the `jsonschema` package against docs/recipe.schema.json.
usage: schema_verdict.py SCHEMA RECIPE..."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1], encoding="utf-8"))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    errors = list(validator.iter_errors(json.load(open(path, encoding="utf-8"))))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        print(f"{path}: invalid: /{'/'.join(str(p) for p in e.absolute_path)}: {e.message}")
    else:
        print(f"{path}: valid")
