# Plugin SDK: installed plugin-facing headers, slmops-plugin.pc, template, conformance tool.
slmopsinclude_HEADERS += \
	sdk/include/slmops/plugin.h \
	sdk/include/slmops/fp16.h \
	sdk/include/slmops/plugin-backend.h \
	sdk/include/slmops/plugin-quantizer.h \
	sdk/include/slmops/plugin-trainer.h \
	sdk/include/slmops/plugin-format.h

# The backend conformance suite: a convenience library shared by slmops-conform,
# `slmops selftest` and the tests.
noinst_LTLIBRARIES += sdk/conform/libslmconform.la
sdk_conform_libslmconform_la_SOURCES = \
	sdk/conform/conform.h \
	sdk/conform/internal.h \
	sdk/conform/reference.h \
	sdk/conform/reference.c \
	sdk/conform/cases.c \
	sdk/conform/suite.c \
	sdk/conform/quant.c \
	sdk/conform/gradcheck.c
sdk_conform_libslmconform_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
sdk_conform_libslmconform_la_LIBADD = $(JANSSON_LIBS)

# slmops-conform: the suite as a tool any backend plugin can be run against.
bin_PROGRAMS += sdk/conform/slmops-conform
sdk_conform_slmops_conform_SOURCES = sdk/conform/slmops-conform.c
sdk_conform_slmops_conform_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
sdk_conform_slmops_conform_LDADD = sdk/conform/libslmconform.la libslmops.la $(JANSSON_LIBS)
