# The CUDA backend (plugins/backend-cuda), registered only where it is built:
# without a CUDA device `slmops plugins` shows it disabled with "no CUDA device";
# with one, the script says so (exit 77) after slmops-conform passes on it, and
# test-cuda (which skips without a device) runs every op and stories260K on it.
# gpu-check.sh is the longer check a session with a GPU machine runs by hand.
if BUILD_BACKEND_CUDA
check_PROGRAMS += tests/cuda/test-cuda
TESTS += tests/cuda/cuda-plugins.sh tests/cuda/test-cuda
tests_cuda_test_cuda_SOURCES = tests/cuda/test-cuda.c tests/compute/common.c \
	tests/compute/common.h
tests_cuda_test_cuda_CFLAGS = $(test_cflags)
tests_cuda_test_cuda_LDADD = sdk/conform/libslmconform.la $(test_libs) -lm
endif
EXTRA_DIST += tests/cuda/cuda-plugins.sh tests/cuda/gpu-check.sh
