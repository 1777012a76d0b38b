# OpenCL backend (configure --enable-opencl): OpenCL C kernels embedded in the
# module as one string and built by the device's compiler when a device is opened.
opencl_kernel_sources = \
	plugins/backend-opencl/kernels/common.cl \
	plugins/backend-opencl/kernels/elem.cl \
	plugins/backend-opencl/kernels/matmul.cl \
	plugins/backend-opencl/kernels/rows.cl
EXTRA_DIST += $(opencl_kernel_sources)

if BUILD_BACKEND_OPENCL
plugin_LTLIBRARIES += plugins/backend-opencl/backend-opencl.la
plugins_backend_opencl_backend_opencl_la_SOURCES = \
	plugins/backend-opencl/ocl.h \
	plugins/backend-opencl/plugin.c \
	plugins/backend-opencl/program.c \
	plugins/backend-opencl/device.c \
	plugins/backend-opencl/ops.c \
	plugins/common/gpu-nodes.h \
	plugins/common/gpu-nodes.c \
	plugins/backend-opencl/compute.c
nodist_plugins_backend_opencl_backend_opencl_la_SOURCES = plugins/backend-opencl/kernels/kernels.cl.h
plugins_backend_opencl_backend_opencl_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/plugins/common \
	-I$(top_builddir)/plugins/backend-opencl $(OPENCL_CFLAGS)
plugins_backend_opencl_backend_opencl_la_CFLAGS = $(plugin_cflags)
plugins_backend_opencl_backend_opencl_la_LDFLAGS = $(plugin_ldflags) \
	-export-symbols-regex '^slm_plugin_entry$$'
plugins_backend_opencl_backend_opencl_la_LIBADD = $(OPENCL_LIBS) $(PTHREAD_LIBS)
BUILT_SOURCES += plugins/backend-opencl/kernels/kernels.cl.h
CLEANFILES += plugins/backend-opencl/kernels/kernels.cl.h
plugin_builddir_backend_opencl = plugins/backend-opencl
endif

# The kernel files, in order, as the lines of one C string literal.
plugins/backend-opencl/kernels/kernels.cl.h: $(opencl_kernel_sources)
	$(AM_V_GEN)$(MKDIR_P) plugins/backend-opencl/kernels && \
	for f in $(opencl_kernel_sources); do \
		$(SED) -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $(top_srcdir)/$$f || exit 1; \
	done >$@.tmp && mv -f $@.tmp $@
