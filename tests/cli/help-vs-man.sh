#!/bin/sh
# Issue 7, item 20: each verb's --help and its man page section list the same options.
: "${top_builddir:?run through make check}" "${top_srcdir:?run through make check}"
exec "${PYTHON3:-python3}" "$top_srcdir/tests/cli/help_vs_man.py" "$top_builddir/slmops" \
    "$top_srcdir/docs/slmops.1"
