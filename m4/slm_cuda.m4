# SLM_CUDA_CHECK
# --------------
# The CUDA backend's toolchain, once nvcc ($NVCC) is found: the toolkit's headers
# and static runtime beside it, the -gencode list (NVCC_ARCHS, default: those of
# 70 75 80 86 89 90 this nvcc can target, plus PTX of the newest for later GPUs),
# and a kernel compiled with the host compiler nvcc will use. Sets slm_backend_ok
# or slm_backend_why as SLM_BACKEND_ENABLE expects; substitutes CUDA_CFLAGS,
# CUDA_LIBS, NVCC_GENCODE and NVCCFLAGS.
AC_DEFUN([SLM_CUDA_CHECK], [
  AC_ARG_VAR([NVCC_ARCHS], [CUDA compute capabilities to build kernels for, e.g. "80 90" (default: 70 75 80 86 89 90 where nvcc supports them)])
  AC_ARG_VAR([NVCCFLAGS], [extra flags for nvcc])
  # auto builds it only where it can run: a machine with the NVIDIA driver
  # (a build here would only report "no CUDA device"); yes builds it anyway.
  slm_cuda_driver=yes
  AS_IF([test "x$slm_enable_cuda" = xauto], [
    AC_MSG_CHECKING([for the NVIDIA driver (libcuda.so.1)])
    AS_IF([test -e /proc/driver/nvidia/version || (/sbin/ldconfig -p 2>/dev/null | grep 'libcuda\.so\.1' >/dev/null)],
      [AC_MSG_RESULT([yes])],
      [AC_MSG_RESULT([no])
       slm_cuda_driver=no
       slm_backend_why="nvcc found but no NVIDIA driver here; --enable-cuda=yes builds it anyway"])
  ])
  AS_IF([test "x$slm_cuda_driver" = xyes], [
    slm_cuda_home=`AS_DIRNAME(["$NVCC"])`
    slm_cuda_home=`AS_DIRNAME(["$slm_cuda_home"])`
    slm_cuda_lib=""
    for slm_d in "$slm_cuda_home/lib64" "$slm_cuda_home/lib" "$slm_cuda_home/targets/x86_64-linux/lib" \
                 "$slm_cuda_home/targets/sbsa-linux/lib"; do
      AS_IF([test -z "$slm_cuda_lib" && test -f "$slm_d/libcudart_static.a"], [slm_cuda_lib=$slm_d])
    done
    AS_IF([test ! -f "$slm_cuda_home/include/cuda_runtime_api.h"],
      [slm_backend_why="nvcc is $NVCC but $slm_cuda_home/include/cuda_runtime_api.h is missing"],
    [test -z "$slm_cuda_lib"],
      [slm_backend_why="no libcudart_static.a under $slm_cuda_home"],
    [
      CUDA_CFLAGS="-I$slm_cuda_home/include"
      # The runtime linked statically: the plugin needs no libcudart.so on the
      # loader's path, only the driver (libcuda.so.1), which the runtime opens itself.
      CUDA_LIBS="-L$slm_cuda_lib -lcudart_static -ldl -lrt $PTHREAD_LIBS"
      AS_IF([test -z "$NVCC_ARCHS"], [
        slm_listed=`"$NVCC" --list-gpu-arch 2>/dev/null`
        AS_IF([test -z "$slm_listed"], [NVCC_ARCHS="70 80"], [
          for slm_a in 70 75 80 86 89 90; do
            AS_CASE([" "`echo $slm_listed`" "], [*" compute_$slm_a "*], [NVCC_ARCHS="$NVCC_ARCHS $slm_a"])
          done
        ])
      ])
      NVCC_GENCODE=""
      slm_last=""
      for slm_a in $NVCC_ARCHS; do
        NVCC_GENCODE="$NVCC_GENCODE -gencode arch=compute_$slm_a,code=sm_$slm_a"
        slm_last=$slm_a
      done
      AS_IF([test -n "$slm_last"],
        [NVCC_GENCODE="$NVCC_GENCODE -gencode arch=compute_$slm_last,code=compute_$slm_last"])
      AC_MSG_CHECKING([whether $NVCC compiles a kernel for$NVCC_ARCHS])
      cat > conftest.cu <<_SLM_EOF
__global__ void k(float *x) { x[[threadIdx.x]] *= 2.0f; }
extern "C" void launch(float *x) { k<<<1, 32>>>(x); }
_SLM_EOF
      AS_IF([test -z "$slm_last"],
        [AC_MSG_RESULT([no]); slm_backend_why="NVCC_ARCHS is empty"],
      [$NVCC -ccbin "$CC" $NVCC_GENCODE -Xcompiler -fPIC -c conftest.cu -o conftest.$OBJEXT >&AS_MESSAGE_LOG_FD 2>&1],
        [AC_MSG_RESULT([yes]); slm_backend_ok=yes],
        [AC_MSG_RESULT([no]); slm_backend_why="$NVCC cannot compile a kernel with $CC for$NVCC_ARCHS (see config.log)"])
      rm -f conftest.cu conftest.$OBJEXT
    ])
  ])
  AC_SUBST([CUDA_CFLAGS])
  AC_SUBST([CUDA_LIBS])
  AC_SUBST([NVCC_GENCODE])
])
