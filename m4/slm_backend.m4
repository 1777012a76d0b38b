# SLM_BACKEND_ENABLE(NAME, DESCRIPTION, CHECK-COMMANDS)
# -----------------------------------------------------
# One switch per optional backend: --enable-NAME=yes|no|auto (default auto).
# CHECK-COMMANDS must set slm_backend_ok=yes when the backend can be built, or
# slm_backend_ok=no and slm_backend_why="reason". An explicit "yes" that cannot
# be met stops configure with that reason; "auto" records it for the summary.
# Defines the automake conditional BUILD_BACKEND_NAME (upper case) and the shell
# variable slm_summary_NAME used by the end-of-configure table.
AC_DEFUN([SLM_BACKEND_ENABLE], [
  AC_ARG_ENABLE([$1],
    [AS_HELP_STRING([--enable-$1@<:@=yes|no|auto@:>@], [$2 (default: auto)])],
    [slm_enable_$1=$enableval], [slm_enable_$1=auto])
  AS_CASE([$slm_enable_$1], [yes|no|auto], [],
    [AC_MSG_ERROR([--enable-$1 takes yes, no or auto, not '$slm_enable_$1'])])
  slm_backend_ok=no
  slm_backend_why="disabled by --disable-$1"
  AS_IF([test "x$slm_enable_$1" != xno], [
    slm_backend_why=""
    $3
  ])
  AS_IF([test "x$slm_enable_$1" = xyes && test "x$slm_backend_ok" != xyes],
    [AC_MSG_ERROR([--enable-$1=yes was requested but the $1 backend cannot be built: $slm_backend_why])])
  AS_IF([test "x$slm_backend_ok" = xyes],
    [slm_summary_$1="yes"],
    [slm_summary_$1="no ($slm_backend_why)"])
  AM_CONDITIONAL(m4_toupper([BUILD_BACKEND_$1]), [test "x$slm_backend_ok" = xyes])
])
