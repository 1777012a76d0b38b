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
# Weight products at a training shape: mul_mat and mul_mat_t per weight type.
noinst_PROGRAMS += bench/qmatmul-bench
bench_qmatmul_bench_SOURCES = bench/qmatmul-bench.c
bench_qmatmul_bench_CFLAGS = $(AM_CFLAGS)
bench_qmatmul_bench_LDADD = libslmops.la
# Peak RSS of training steps through the internal forward API (full, LoRA, QLoRA).
noinst_PROGRAMS += bench/train-memory
bench_train_memory_SOURCES = bench/train-memory.c
bench_train_memory_CFLAGS = $(AM_CFLAGS)
bench_train_memory_LDADD = $(libslmops_la_OBJECTS) $(libslmops_la_LIBADD) -lm
EXTRA_bench_train_memory_DEPENDENCIES = libslmops.la
# This machine's f32 FMA peak (bench/train reports training FLOP/s as a share of it).
noinst_PROGRAMS += bench/fma-peak
bench_fma_peak_SOURCES = bench/fma-peak.c
bench_fma_peak_LDADD = -lpthread
# Memory read bandwidth (bench/generate reports decode as a share of it).
noinst_PROGRAMS += bench/membw
bench_membw_SOURCES = bench/membw.c
bench_membw_LDADD = -lpthread
EXTRA_DIST += bench/matmul bench/generate bench/train bench/train-mpi bench/benchlib.py bench/serve-load bench/serve

# What bench/* scripts need, without building (or waiting for) the rest of the tree.
.PHONY: bench-deps
bench-deps: libslmops.la $(plugin_LTLIBRARIES) $(noinst_DATA) bench/matmul-bench \
	bench/qmatmul-bench bench/train-memory bench/fma-peak bench/membw
