# SLM_CHECK_CC_FLAGS(VARIABLE, FLAGS)
# ------------------------------------
# Set VARIABLE to FLAGS when the C compiler accepts all of them, else to "".
AC_DEFUN([SLM_CHECK_CC_FLAGS], [
  AC_MSG_CHECKING([whether $CC accepts $2])
  slm_save_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS $2 -Werror"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
    [$1="$2"; AC_MSG_RESULT([yes])],
    [$1=""; AC_MSG_RESULT([no])])
  CFLAGS=$slm_save_CFLAGS
])
