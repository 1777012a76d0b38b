# The CUDA backend (plugins/backend-cuda), registered only where it is built:
# without a CUDA device `slmops plugins` shows it disabled with "no CUDA device";
# with one, the script says so (exit 77) after slmops-conform passes on it.
# gpu-check.sh is the longer check a session with a GPU machine runs by hand.
if BUILD_BACKEND_CUDA
TESTS += tests/cuda/cuda-plugins.sh
endif
EXTRA_DIST += tests/cuda/cuda-plugins.sh tests/cuda/gpu-check.sh
