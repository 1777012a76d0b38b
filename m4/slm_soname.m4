# SLM_SONAME(VARIABLE, PKG-MODULE, LIBNAME, DEFAULT)
# ---------------------------------------------------
# Defines VARIABLE (config.h) as the SONAME of libLIBNAME.so, the library
# pkg-config module PKG-MODULE names, for a program that opens it with dlopen
# rather than linking it. Reads the development symlink's SONAME with objdump;
# DEFAULT when it cannot (or the user's own VARIABLE when set).
AC_DEFUN([SLM_SONAME], [
  AC_REQUIRE([PKG_PROG_PKG_CONFIG])
  AC_CHECK_TOOL([OBJDUMP], [objdump], [false])
  AC_ARG_VAR([$1], [the soname dlopen opens for lib$3 (default: found at configure time)])
  AC_MSG_CHECKING([the soname of lib$3])
  AS_IF([test -z "$$1"], [
    slm_so_dir=`$PKG_CONFIG --variable=libdir $2 2>/dev/null`
    slm_so_file="$slm_so_dir/lib$3.so"
    AS_IF([test -f "$slm_so_file"], [], [slm_so_file=`$CC -print-file-name=lib$3.so`])
    AS_IF([test -f "$slm_so_file"],
      [$1=`$OBJDUMP -p "$slm_so_file" 2>/dev/null | sed -n 's/^ *SONAME *//p'`])
    AS_IF([test -z "$$1"], [$1="$4"])
  ])
  AC_MSG_RESULT([$$1])
  AC_DEFINE_UNQUOTED([$1], ["$$1"], [the soname of lib$3, opened with dlopen on first use])
])
