# Plugin SDK: installed plugin-facing headers, slmops-plugin.pc, template, conformance tool.
slmopsinclude_HEADERS += \
	sdk/include/slmops/plugin.h \
	sdk/include/slmops/fp16.h \
	sdk/include/slmops/plugin-backend.h \
	sdk/include/slmops/plugin-quantizer.h \
	sdk/include/slmops/plugin-trainer.h \
	sdk/include/slmops/plugin-format.h \
	sdk/include/slmops/plugin-comm.h

# The out-of-tree plugin templates (interface v1 and v2), installed for plugin
# authors (libslmops-dev).
sdktemplatedir = $(pkgdatadir)/sdk/template
dist_sdktemplate_DATA = \
	sdk/template/README.md \
	sdk/template/Makefile \
	sdk/template/template-backend.c \
	sdk/template/template-backend.json.in
sdktemplatev2dir = $(pkgdatadir)/sdk/template-v2
dist_sdktemplatev2_DATA = \
	sdk/template-v2/README.md \
	sdk/template-v2/Makefile \
	sdk/template-v2/template-v2-backend.c \
	sdk/template-v2/template-v2-backend.json.in

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
