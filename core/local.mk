# libslmops: the core library. Sources of each part are added by that part's
# fragment (core/registry/local.mk, core/compute/local.mk).
lib_LTLIBRARIES += libslmops.la
libslmops_la_SOURCES = \
	core/util/error.c \
	core/util/log.c \
	core/util/types.c \
	core/util/ops.c \
	core/util/version.c \
	core/util/input.c \
	core/util/output.c \
	core/util/output-check.c \
	core/util/output-stale.c \
	core/util/output-signal.c \
	core/util/sha256.c \
	core/util/host-pages.c \
	core/internal/host-pages.h \
	core/internal/sha256.h \
	core/internal/output.h \
	core/internal/device.h \
	core/internal/util.h \
	core/internal/types.h
libslmops_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(PCRE2_CFLAGS) $(UTF8PROC_CFLAGS)
libslmops_la_LIBADD = $(JANSSON_LIBS) $(PTHREAD_LIBS)
# Exactly the symbols listed are exported (tests/packaging/exported-symbols.sh
# compares the list with the library and the public headers).
libslmops_la_LDFLAGS = -version-info $(SLMOPS_LT_VERSION) -no-undefined \
	-export-symbols $(srcdir)/core/libslmops.sym
EXTRA_libslmops_la_DEPENDENCIES = core/libslmops.sym
EXTRA_DIST += core/libslmops.sym

slmopsinclude_HEADERS += \
	core/include/slmops/slmops.h \
	core/include/slmops/error.h \
	core/include/slmops/log.h \
	core/include/slmops/types.h \
	core/include/slmops/ops.h \
	core/include/slmops/registry.h \
	core/include/slmops/device.h \
	core/include/slmops/graph.h \
	core/include/slmops/sched.h \
	core/include/slmops/input.h \
	core/include/slmops/output.h
nodist_slmopsinclude_HEADERS += core/include/slmops/version.h

# A root `make install` into the running system refreshes the linker cache, so the
# installed slmops finds libslmops.so.0 at once (packagers' DESTDIR installs skip it:
# their packages run ldconfig themselves).
install-exec-hook:
	@if test -z "$(DESTDIR)" && test "`id -u`" = 0 && command -v ldconfig >/dev/null 2>&1; then \
		ldconfig "$(DESTDIR)$(libdir)" 2>/dev/null || ldconfig || :; \
	fi
