# tests/cpu build fragment.

# matmul kernels: plugins/backend-cpu/matmul.c is built once per ISA with its entry
# points renamed, and every build the CPU can run is checked by one program.
mmk_rename = -Dcpu_mul_mat_2d=mmk_$(1)_mul_mat_2d -Dcpu_mul_vec_rows=mmk_$(1)_mul_vec_rows \
	-Dcpu_mul_mat_isa=mmk_$(1)_isa
check_LTLIBRARIES += tests/cpu/libmmk-scalar.la
tests_cpu_libmmk_scalar_la_SOURCES = plugins/backend-cpu/matmul.c plugins/backend-cpu/matmul.h
tests_cpu_libmmk_scalar_la_CFLAGS = $(AM_CFLAGS) $(call mmk_rename,scalar)
check_PROGRAMS += tests/cpu/matmul-kernel
TESTS += tests/cpu/matmul-kernel
tests_cpu_matmul_kernel_SOURCES = tests/cpu/matmul-kernel.c
tests_cpu_matmul_kernel_CFLAGS = $(test_cflags)
tests_cpu_matmul_kernel_LDADD = tests/cpu/libmmk-scalar.la $(test_libs)
if BUILD_CPU_AVX2
check_LTLIBRARIES += tests/cpu/libmmk-avx2.la
tests_cpu_libmmk_avx2_la_SOURCES = plugins/backend-cpu/matmul.c
tests_cpu_libmmk_avx2_la_CFLAGS = $(AM_CFLAGS) $(SLM_AVX2_CFLAGS) $(call mmk_rename,avx2)
tests_cpu_matmul_kernel_CFLAGS += -DMMK_HAVE_AVX2
tests_cpu_matmul_kernel_LDADD += tests/cpu/libmmk-avx2.la
endif
if BUILD_CPU_AVX512
check_LTLIBRARIES += tests/cpu/libmmk-avx512.la
tests_cpu_libmmk_avx512_la_SOURCES = plugins/backend-cpu/matmul.c
tests_cpu_libmmk_avx512_la_CFLAGS = $(AM_CFLAGS) $(SLM_AVX512_CFLAGS) $(call mmk_rename,avx512)
tests_cpu_matmul_kernel_CFLAGS += -DMMK_HAVE_AVX512
tests_cpu_matmul_kernel_LDADD += tests/cpu/libmmk-avx512.la
endif

# K-quant and NF4 kernels: quant-k.c and quant-nf4.c built once per ISA with their
# table entries renamed; one program checks every build this CPU can run.
kq_sources = plugins/backend-cpu/quant-k.c plugins/backend-cpu/quant-nf4.c
kq_rename = -Dcpu_qtype_q4_k=kq_$(1)_q4_k -Dcpu_qtype_q5_k=kq_$(1)_q5_k \
	-Dcpu_qtype_q6_k=kq_$(1)_q6_k -Dcpu_qtype_nf4=kq_$(1)_nf4
check_LTLIBRARIES += tests/cpu/libkq-scalar.la
tests_cpu_libkq_scalar_la_SOURCES = $(kq_sources)
tests_cpu_libkq_scalar_la_CFLAGS = $(AM_CFLAGS) $(call kq_rename,scalar)
check_PROGRAMS += tests/cpu/test-kquants
TESTS += tests/cpu/test-kquants
tests_cpu_test_kquants_SOURCES = tests/cpu/test-kquants.c
tests_cpu_test_kquants_CFLAGS = $(test_cflags)
tests_cpu_test_kquants_LDADD = tests/cpu/libkq-scalar.la $(test_libs)
if BUILD_CPU_AVX2
check_LTLIBRARIES += tests/cpu/libkq-avx2.la
tests_cpu_libkq_avx2_la_SOURCES = $(kq_sources)
tests_cpu_libkq_avx2_la_CFLAGS = $(AM_CFLAGS) $(SLM_AVX2_CFLAGS) $(call kq_rename,avx2)
tests_cpu_test_kquants_CFLAGS += -DKQ_HAVE_AVX2
tests_cpu_test_kquants_LDADD += tests/cpu/libkq-avx2.la
endif
if BUILD_CPU_AVX512
check_LTLIBRARIES += tests/cpu/libkq-avx512.la
tests_cpu_libkq_avx512_la_SOURCES = $(kq_sources)
tests_cpu_libkq_avx512_la_CFLAGS = $(AM_CFLAGS) $(SLM_AVX512_CFLAGS) $(call kq_rename,avx512)
tests_cpu_test_kquants_CFLAGS += -DKQ_HAVE_AVX512
tests_cpu_test_kquants_LDADD += tests/cpu/libkq-avx512.la
endif
if BUILD_CPU_AVX512_VNNI
check_LTLIBRARIES += tests/cpu/libkq-avx512vnni.la
tests_cpu_libkq_avx512vnni_la_SOURCES = $(kq_sources)
tests_cpu_libkq_avx512vnni_la_CFLAGS = $(AM_CFLAGS) $(SLM_AVX512_VNNI_CFLAGS) \
	$(call kq_rename,avx512vnni)
tests_cpu_test_kquants_CFLAGS += -DKQ_HAVE_AVX512VNNI
tests_cpu_test_kquants_LDADD += tests/cpu/libkq-avx512vnni.la
endif

# The CPU backend plugin itself (backend-ops.c) and its quantized-weight kernels
# (quant-ops.c: quant-legacy.c and the op layer): one program of each per variant
# this configuration builds, loading that variant's .so from the build tree. A
# variant this CPU cannot run exits 77 (SKIP) naming the missing feature.
cpu_backend_test_sources = \
	tests/cpu/backend-ops.c \
	tests/cpu/backend-harness.c \
	tests/cpu/backend-harness.h
cpu_quant_test_sources = \
	tests/cpu/quant-ops.c \
	tests/cpu/backend-harness.c \
	tests/cpu/backend-harness.h
# $(call cpu_variant,NAME,FEATURES): the variant a program loads, and what it needs.
cpu_variant = $(AM_CPPFLAGS) -DCPU_TEST_VARIANT='"cpu-$(1)"' -DCPU_TEST_FEATURES='"$(2)"'
cpu_features_avx2 = avx2 fma f16c
cpu_features_avx512 = avx512f avx512bw avx512vl avx512dq $(cpu_features_avx2)
if HOST_X86_64
cpu_variant_tests = tests/cpu/backend-x86-64 tests/cpu/quant-x86-64
tests_cpu_backend_x86_64_SOURCES = $(cpu_backend_test_sources)
tests_cpu_backend_x86_64_CPPFLAGS = $(call cpu_variant,x86-64,sse2)
tests_cpu_backend_x86_64_CFLAGS = $(test_cflags)
tests_cpu_backend_x86_64_LDADD = $(test_libs)
tests_cpu_quant_x86_64_SOURCES = $(cpu_quant_test_sources)
tests_cpu_quant_x86_64_CPPFLAGS = $(call cpu_variant,x86-64,sse2)
tests_cpu_quant_x86_64_CFLAGS = $(test_cflags)
tests_cpu_quant_x86_64_LDADD = $(test_libs)
if BUILD_CPU_AVX2
cpu_variant_tests += tests/cpu/backend-avx2 tests/cpu/quant-avx2
tests_cpu_backend_avx2_SOURCES = $(cpu_backend_test_sources)
tests_cpu_backend_avx2_CPPFLAGS = $(call cpu_variant,avx2,$(cpu_features_avx2))
tests_cpu_backend_avx2_CFLAGS = $(test_cflags)
tests_cpu_backend_avx2_LDADD = $(test_libs)
tests_cpu_quant_avx2_SOURCES = $(cpu_quant_test_sources)
tests_cpu_quant_avx2_CPPFLAGS = $(call cpu_variant,avx2,$(cpu_features_avx2))
tests_cpu_quant_avx2_CFLAGS = $(test_cflags)
tests_cpu_quant_avx2_LDADD = $(test_libs)
endif
if BUILD_CPU_AVX512
cpu_variant_tests += tests/cpu/backend-avx512 tests/cpu/quant-avx512
tests_cpu_backend_avx512_SOURCES = $(cpu_backend_test_sources)
tests_cpu_backend_avx512_CPPFLAGS = $(call cpu_variant,avx512,$(cpu_features_avx512))
tests_cpu_backend_avx512_CFLAGS = $(test_cflags)
tests_cpu_backend_avx512_LDADD = $(test_libs)
tests_cpu_quant_avx512_SOURCES = $(cpu_quant_test_sources)
tests_cpu_quant_avx512_CPPFLAGS = $(call cpu_variant,avx512,$(cpu_features_avx512))
tests_cpu_quant_avx512_CFLAGS = $(test_cflags)
tests_cpu_quant_avx512_LDADD = $(test_libs)
endif
# VNNI changes only the quantized kernels (quant-legacy.c, quant-k.c) of its variant.
if BUILD_CPU_AVX512_VNNI
cpu_variant_tests += tests/cpu/quant-avx512-vnni
tests_cpu_quant_avx512_vnni_SOURCES = $(cpu_quant_test_sources)
tests_cpu_quant_avx512_vnni_CPPFLAGS = \
	$(call cpu_variant,avx512-vnni,avx512_vnni $(cpu_features_avx512))
tests_cpu_quant_avx512_vnni_CFLAGS = $(test_cflags)
tests_cpu_quant_avx512_vnni_LDADD = $(test_libs)
endif
else
cpu_variant_tests = tests/cpu/backend-generic tests/cpu/quant-generic
tests_cpu_backend_generic_SOURCES = $(cpu_backend_test_sources)
tests_cpu_backend_generic_CPPFLAGS = $(call cpu_variant,generic,)
tests_cpu_backend_generic_CFLAGS = $(test_cflags)
tests_cpu_backend_generic_LDADD = $(test_libs)
tests_cpu_quant_generic_SOURCES = $(cpu_quant_test_sources)
tests_cpu_quant_generic_CPPFLAGS = $(call cpu_variant,generic,)
tests_cpu_quant_generic_CFLAGS = $(test_cflags)
tests_cpu_quant_generic_LDADD = $(test_libs)
endif
check_PROGRAMS += $(cpu_variant_tests)
TESTS += $(cpu_variant_tests)

# CPU feature names (core/registry/cpu_features.c) against /proc/cpuinfo.
check_PROGRAMS += tests/cpu/cpu-features
TESTS += tests/cpu/cpu-features
tests_cpu_cpu_features_SOURCES = tests/cpu/cpu-features.c
tests_cpu_cpu_features_CFLAGS = $(test_cflags)
tests_cpu_cpu_features_LDADD = $(test_libs)
