# tests/cpu build fragment.

# matmul kernels: plugins/backend-cpu/matmul.c is built once per ISA with its entry
# points renamed, and every build the CPU can run is checked by one program.
mmk_rename = -Dcpu_mul_mat_2d=mmk_$(1)_mul_mat_2d -Dcpu_mul_mat_isa=mmk_$(1)_isa
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

# The CPU backend plugin itself: one program per variant, each loading that
# variant's .so from the build tree. A variant this CPU cannot run exits 77 (SKIP)
# naming the missing feature.
cpu_backend_test_sources = \
	tests/cpu/backend-ops.c \
	tests/cpu/backend-harness.c \
	tests/cpu/backend-harness.h
if HOST_X86_64
check_PROGRAMS += tests/cpu/backend-x86-64
TESTS += tests/cpu/backend-x86-64
tests_cpu_backend_x86_64_SOURCES = $(cpu_backend_test_sources)
tests_cpu_backend_x86_64_CPPFLAGS = $(AM_CPPFLAGS) -DCPU_TEST_VARIANT='"cpu-x86-64"' \
	-DCPU_TEST_FEATURES='"sse2"'
tests_cpu_backend_x86_64_CFLAGS = $(test_cflags)
tests_cpu_backend_x86_64_LDADD = $(test_libs)
if BUILD_CPU_AVX2
check_PROGRAMS += tests/cpu/backend-avx2
TESTS += tests/cpu/backend-avx2
tests_cpu_backend_avx2_SOURCES = $(cpu_backend_test_sources)
tests_cpu_backend_avx2_CPPFLAGS = $(AM_CPPFLAGS) -DCPU_TEST_VARIANT='"cpu-avx2"' \
	-DCPU_TEST_FEATURES='"avx2 fma f16c"'
tests_cpu_backend_avx2_CFLAGS = $(test_cflags)
tests_cpu_backend_avx2_LDADD = $(test_libs)
endif
if BUILD_CPU_AVX512
check_PROGRAMS += tests/cpu/backend-avx512
TESTS += tests/cpu/backend-avx512
tests_cpu_backend_avx512_SOURCES = $(cpu_backend_test_sources)
tests_cpu_backend_avx512_CPPFLAGS = $(AM_CPPFLAGS) -DCPU_TEST_VARIANT='"cpu-avx512"' \
	-DCPU_TEST_FEATURES='"avx512f avx512bw avx512vl avx512dq avx2 fma f16c"'
tests_cpu_backend_avx512_CFLAGS = $(test_cflags)
tests_cpu_backend_avx512_LDADD = $(test_libs)
endif
else
check_PROGRAMS += tests/cpu/backend-generic
TESTS += tests/cpu/backend-generic
tests_cpu_backend_generic_SOURCES = $(cpu_backend_test_sources)
tests_cpu_backend_generic_CPPFLAGS = $(AM_CPPFLAGS) -DCPU_TEST_VARIANT='"cpu-generic"' \
	-DCPU_TEST_FEATURES='""'
tests_cpu_backend_generic_CFLAGS = $(test_cflags)
tests_cpu_backend_generic_LDADD = $(test_libs)
endif
