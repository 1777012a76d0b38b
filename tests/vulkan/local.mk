# The Vulkan backend (plugins/backend-vulkan) on this machine's first Vulkan device:
# conformance on both memory paths, stories260K against the CPU, the CLI. Both skip
# (exit 77, naming what is missing) without the plugin or a device.
check_PROGRAMS += tests/vulkan/test-vulkan
TESTS += tests/vulkan/test-vulkan tests/vulkan/vulkan-cli.sh
tests_vulkan_test_vulkan_SOURCES = tests/vulkan/test-vulkan.c tests/compute/common.c \
	tests/compute/device-parity.c tests/compute/device-parity.h \
	tests/compute/common.h
tests_vulkan_test_vulkan_CFLAGS = $(test_cflags)
tests_vulkan_test_vulkan_LDADD = sdk/conform/libslmconform.la $(test_libs) -lm
EXTRA_DIST += tests/vulkan/vulkan-cli.sh
