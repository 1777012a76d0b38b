# SLM_PTHREAD
# ---------------
# Find the flags for POSIX threads (GCC and Clang: -pthread) and substitute
# PTHREAD_CFLAGS / PTHREAD_LIBS.
AC_DEFUN([SLM_PTHREAD], [
  AC_MSG_CHECKING([for -pthread])
  slm_save_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS -pthread"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <pthread.h>]],
                                  [[pthread_t t; pthread_create(&t, 0, 0, 0);]])],
    [PTHREAD_CFLAGS=-pthread; PTHREAD_LIBS=-pthread; AC_MSG_RESULT([yes])],
    [AC_MSG_ERROR([POSIX threads are required])])
  CFLAGS=$slm_save_CFLAGS
  AC_SUBST([PTHREAD_CFLAGS])
  AC_SUBST([PTHREAD_LIBS])
])
