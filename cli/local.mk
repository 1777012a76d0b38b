# The `slmops` command: one file per verb over the public library API.
bin_PROGRAMS += slmops
slmops_SOURCES = \
	cli/main.c \
	cli/common.c \
	cli/common.h \
	cli/verbs.h \
	cli/plugins.c \
	cli/devices.c \
	cli/selftest.c
slmops_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
slmops_LDADD = sdk/conform/libslmconform.la libslmops.la $(JANSSON_LIBS)
