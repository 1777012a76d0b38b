# core/comm: the communication layer of data-parallel jobs (slmops/comm.h): a single
# process, or the collectives of a plugin found by its manifest in PLUGIN_FOLDER/comm/.
libslmops_la_SOURCES += \
	core/comm/comm.h \
	core/comm/comm.c \
	core/comm/comm-find.c
slmopsinclude_HEADERS += core/include/slmops/comm.h
