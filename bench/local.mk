# bench build fragment: benchmark drivers, run by hand through the bench/ scripts
# (never by make check). Built with everything so they cannot rot unnoticed.
noinst_PROGRAMS += bench/matmul-bench
bench_matmul_bench_SOURCES = bench/matmul-bench.c
bench_matmul_bench_CFLAGS = $(AM_CFLAGS)
bench_matmul_bench_LDADD = libslmops.la -lm
if HAVE_OPENBLAS
bench_matmul_bench_CFLAGS += $(OPENBLAS_CFLAGS) -DHAVE_OPENBLAS=1
bench_matmul_bench_LDADD += $(OPENBLAS_LIBS)
endif
EXTRA_DIST += bench/matmul bench/generate

# What bench/* scripts need, without building (or waiting for) the rest of the tree.
.PHONY: bench-deps
bench-deps: libslmops.la $(plugin_LTLIBRARIES) $(noinst_DATA) bench/matmul-bench
