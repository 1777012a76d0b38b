# Backend conformance: the reference checked by hand, the suite on every CPU
# variant this machine runs, and the out-of-tree plugin template (acceptance 6).
check_PROGRAMS += tests/conform/test-reference
TESTS += tests/conform/test-reference
tests_conform_test_reference_SOURCES = tests/conform/test-reference.c
tests_conform_test_reference_CFLAGS = $(test_cflags)
tests_conform_test_reference_LDADD = sdk/conform/libslmconform.la $(test_libs)

# One program per CPU variant: each skips (naming the missing CPU features) on
# machines that cannot run it.
conform_cpu_programs = \
	tests/conform/test-conform-cpu-x86-64 \
	tests/conform/test-conform-cpu-avx2 \
	tests/conform/test-conform-cpu-avx512 \
	tests/conform/test-conform-cpu-avx512-vnni
check_PROGRAMS += $(conform_cpu_programs)
TESTS += $(conform_cpu_programs)
tests_conform_test_conform_cpu_x86_64_SOURCES = tests/conform/test-conform-cpu.c
tests_conform_test_conform_cpu_x86_64_CFLAGS = $(test_cflags) -DCONFORM_VARIANT='"cpu-x86-64"'
tests_conform_test_conform_cpu_x86_64_LDADD = sdk/conform/libslmconform.la $(test_libs)
tests_conform_test_conform_cpu_avx2_SOURCES = tests/conform/test-conform-cpu.c
tests_conform_test_conform_cpu_avx2_CFLAGS = $(test_cflags) -DCONFORM_VARIANT='"cpu-avx2"'
tests_conform_test_conform_cpu_avx2_LDADD = sdk/conform/libslmconform.la $(test_libs)
tests_conform_test_conform_cpu_avx512_SOURCES = tests/conform/test-conform-cpu.c
tests_conform_test_conform_cpu_avx512_CFLAGS = $(test_cflags) -DCONFORM_VARIANT='"cpu-avx512"'
tests_conform_test_conform_cpu_avx512_LDADD = sdk/conform/libslmconform.la $(test_libs)
tests_conform_test_conform_cpu_avx512_vnni_SOURCES = tests/conform/test-conform-cpu.c
tests_conform_test_conform_cpu_avx512_vnni_CFLAGS = $(test_cflags) \
	-DCONFORM_VARIANT='"cpu-avx512-vnni"'
tests_conform_test_conform_cpu_avx512_vnni_LDADD = sdk/conform/libslmconform.la $(test_libs)

# Acceptance 6: the SDK template against a DESTDIR install of this tree.
TESTS += tests/conform/sdk-template.sh tests/conform/sdk-template-v2.sh
EXTRA_DIST += tests/conform/sdk-template.sh tests/conform/sdk-template-v2.sh
