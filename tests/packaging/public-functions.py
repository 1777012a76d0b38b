#!/usr/bin/env python3
# Print, one per line and sorted, every function the given public headers declare:
# the names libslmops must export. Comments, macros and function-pointer typedefs are skipped.
import re
import sys


def declared_functions(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # Drop preprocessor lines, joined across backslash continuations.
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    names = set()
    for stmt in text.split(";"):
        stmt = stmt.strip()
        if stmt.startswith("typedef"):
            continue
        # A declaration: the last identifier before the first '(' that is not '(*'.
        m = re.search(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\((?!\s*\*)", stmt)
        if m and "{" not in stmt[:m.start()] and "}" not in stmt[:m.start()]:
            names.add(m.group(1))
        elif m:
            # Declarations after a closing brace of an enum/struct in the same chunk.
            tail = stmt[stmt.rfind("}") + 1:]
            m2 = re.search(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\((?!\s*\*)", tail)
            if m2:
                names.add(m2.group(1))
    return names


def main():
    names = set()
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            names |= declared_functions(f.read())
    for n in sorted(names):
        print(n)


if __name__ == "__main__":
    main()
