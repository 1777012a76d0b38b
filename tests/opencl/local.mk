# The OpenCL backend (plugins/backend-opencl) on this machine's first OpenCL device
# (PoCL here): conformance, stories260K against the CPU, the CLI, LoRA losses. All
# skip (exit 77, naming what is missing) without the plugin or a device.
check_PROGRAMS += tests/opencl/test-opencl
TESTS += tests/opencl/test-opencl tests/opencl/opencl-cli.sh tests/opencl/opencl-lora.sh
tests_opencl_test_opencl_SOURCES = tests/opencl/test-opencl.c tests/compute/common.c \
	tests/compute/device-parity.c tests/compute/device-parity.h \
	tests/compute/common.h
tests_opencl_test_opencl_CFLAGS = $(test_cflags)
tests_opencl_test_opencl_LDADD = sdk/conform/libslmconform.la $(test_libs) -lm
EXTRA_DIST += tests/opencl/opencl-cli.sh tests/opencl/opencl-lora.sh
