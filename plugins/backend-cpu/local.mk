# CPU backend: one source tree built once per ISA variant. Each variant is its own
# libtool module exporting only slm_plugin_entry; its manifest `requires` the CPU
# features the variant was compiled for (manifests/local.mk).

# Matrix-product kernels (contract: matmul.h); more kernel files go here.
cpu_matmul_sources = \
	plugins/backend-cpu/matmul.h \
	plugins/backend-cpu/matmul.c

# Quantized weight types (contract: quant.h; the table: quant.c).
cpu_quant_sources = \
	plugins/backend-cpu/quant.h \
	plugins/backend-cpu/quant-types.h \
	plugins/backend-cpu/quant.c \
	plugins/backend-cpu/quant-legacy.c \
	plugins/backend-cpu/quant-k.c \
	plugins/backend-cpu/quant-nf4.c \
	plugins/backend-cpu/qgemm.h \
	plugins/backend-cpu/qgemm.c

cpu_backend_sources = \
	plugins/backend-cpu/cpu.h \
	plugins/backend-cpu/convert.h \
	plugins/backend-cpu/device.h \
	plugins/backend-cpu/threadpool.h \
	plugins/backend-cpu/vmath.h \
	plugins/backend-cpu/threadpool.c \
	plugins/backend-cpu/plugin.c \
	plugins/backend-cpu/probe.h \
	plugins/backend-cpu/probe.c \
	plugins/backend-cpu/device.c \
	plugins/backend-cpu/compute.c \
	plugins/backend-cpu/util.c \
	plugins/backend-cpu/ops-elementwise.c \
	plugins/backend-cpu/ops-norm.c \
	plugins/backend-cpu/ops-rope.c \
	plugins/backend-cpu/ops-softmax.c \
	plugins/backend-cpu/ops-attn.c \
	plugins/backend-cpu/attn-blocks.h \
	plugins/backend-cpu/attn-blocks.c \
	plugins/backend-cpu/weights-arena.h \
	plugins/backend-cpu/weights-arena.c \
	plugins/backend-cpu/ops-getrows.c \
	plugins/backend-cpu/ops-matmul.c \
	plugins/backend-cpu/ops-matmul-t.c \
	plugins/backend-cpu/ops-copy.c \
	plugins/backend-cpu/ops-loss.c \
	plugins/backend-cpu/ops-reduce.c \
	plugins/backend-cpu/ops-optim.c \
	plugins/backend-cpu/repack.h \
	plugins/backend-cpu/repack.c \
	$(cpu_matmul_sources) \
	$(cpu_quant_sources)

cpu_backend_ldflags = $(plugin_ldflags) -export-symbols-regex '^slm_plugin_entry$$'
cpu_backend_libadd = $(PTHREAD_LIBS)

if HOST_X86_64
plugin_LTLIBRARIES += plugins/backend-cpu/cpu-x86-64.la
plugins_backend_cpu_cpu_x86_64_la_SOURCES = $(cpu_backend_sources)
plugins_backend_cpu_cpu_x86_64_la_CPPFLAGS = $(AM_CPPFLAGS) -DCPU_VARIANT_NAME='"cpu-x86-64"'
plugins_backend_cpu_cpu_x86_64_la_CFLAGS = $(plugin_cflags)
plugins_backend_cpu_cpu_x86_64_la_LDFLAGS = $(cpu_backend_ldflags)
plugins_backend_cpu_cpu_x86_64_la_LIBADD = $(cpu_backend_libadd)

if BUILD_CPU_AVX2
plugin_LTLIBRARIES += plugins/backend-cpu/cpu-avx2.la
plugins_backend_cpu_cpu_avx2_la_SOURCES = $(cpu_backend_sources)
plugins_backend_cpu_cpu_avx2_la_CPPFLAGS = $(AM_CPPFLAGS) -DCPU_VARIANT_NAME='"cpu-avx2"'
plugins_backend_cpu_cpu_avx2_la_CFLAGS = $(plugin_cflags) $(SLM_AVX2_CFLAGS)
plugins_backend_cpu_cpu_avx2_la_LDFLAGS = $(cpu_backend_ldflags)
plugins_backend_cpu_cpu_avx2_la_LIBADD = $(cpu_backend_libadd)
endif

if BUILD_CPU_AVX512
plugin_LTLIBRARIES += plugins/backend-cpu/cpu-avx512.la
plugins_backend_cpu_cpu_avx512_la_SOURCES = $(cpu_backend_sources)
plugins_backend_cpu_cpu_avx512_la_CPPFLAGS = $(AM_CPPFLAGS) -DCPU_VARIANT_NAME='"cpu-avx512"'
plugins_backend_cpu_cpu_avx512_la_CFLAGS = $(plugin_cflags) $(SLM_AVX512_CFLAGS)
plugins_backend_cpu_cpu_avx512_la_LDFLAGS = $(cpu_backend_ldflags)
plugins_backend_cpu_cpu_avx512_la_LIBADD = $(cpu_backend_libadd)
endif

if BUILD_CPU_AVX512_VNNI
plugin_LTLIBRARIES += plugins/backend-cpu/cpu-avx512-vnni.la
plugins_backend_cpu_cpu_avx512_vnni_la_SOURCES = $(cpu_backend_sources)
plugins_backend_cpu_cpu_avx512_vnni_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DCPU_VARIANT_NAME='"cpu-avx512-vnni"'
plugins_backend_cpu_cpu_avx512_vnni_la_CFLAGS = $(plugin_cflags) $(SLM_AVX512_VNNI_CFLAGS)
plugins_backend_cpu_cpu_avx512_vnni_la_LDFLAGS = $(cpu_backend_ldflags)
plugins_backend_cpu_cpu_avx512_vnni_la_LIBADD = $(cpu_backend_libadd)
endif
else
plugin_LTLIBRARIES += plugins/backend-cpu/cpu-generic.la
plugins_backend_cpu_cpu_generic_la_SOURCES = $(cpu_backend_sources)
plugins_backend_cpu_cpu_generic_la_CPPFLAGS = $(AM_CPPFLAGS) -DCPU_VARIANT_NAME='"cpu-generic"'
plugins_backend_cpu_cpu_generic_la_CFLAGS = $(plugin_cflags)
plugins_backend_cpu_cpu_generic_la_LDFLAGS = $(cpu_backend_ldflags)
plugins_backend_cpu_cpu_generic_la_LIBADD = $(cpu_backend_libadd)
endif
