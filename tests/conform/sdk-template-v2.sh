#!/bin/sh
# The version-2 SDK template (sdk/template-v2: a backend context from init,
# SLM_PLUGIN_DEFINE, buffer_copy) goes through every check sdk-template.sh makes of
# the version-1 one: out-of-tree build with pkg-config, listing, slmops-conform.
set -eu
: "${top_srcdir:?run from make check}"
grep -q '^#define SLM_BACKEND_USE_VERSION 2' "$top_srcdir/sdk/template-v2/template-v2-backend.c" ||
    { echo "FAIL: sdk/template-v2 is not written against interface version 2" >&2; exit 1; }
SLM_TEMPLATE=template-v2 SLM_TEMPLATE_PLUGIN=template-v2-backend SLM_TEMPLATE_FAMILY=template2 \
    exec sh "$top_srcdir/tests/conform/sdk-template.sh"
