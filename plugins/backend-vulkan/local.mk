# Vulkan backend (configure --enable-vulkan): GLSL compute shaders compiled to
# SPIR-V by glslc at build time and embedded in the module as C arrays.
vulkan_shader_sources = \
	plugins/backend-vulkan/shaders/common.glsl \
	plugins/backend-vulkan/shaders/elem.comp \
	plugins/backend-vulkan/shaders/matmul.comp \
	plugins/backend-vulkan/shaders/rows.comp
vulkan_shader_headers = \
	plugins/backend-vulkan/shaders/elem.spv.h \
	plugins/backend-vulkan/shaders/matmul.spv.h \
	plugins/backend-vulkan/shaders/matmul-fp16.spv.h \
	plugins/backend-vulkan/shaders/rows.spv.h
EXTRA_DIST += $(vulkan_shader_sources)

if BUILD_BACKEND_VULKAN
plugin_LTLIBRARIES += plugins/backend-vulkan/backend-vulkan.la
plugins_backend_vulkan_backend_vulkan_la_SOURCES = \
	plugins/backend-vulkan/vk.h \
	plugins/backend-vulkan/plugin.c \
	plugins/backend-vulkan/device.c \
	plugins/backend-vulkan/pipelines.c \
	plugins/backend-vulkan/ops.c \
	plugins/common/gpu-nodes.h \
	plugins/common/gpu-nodes.c \
	plugins/backend-vulkan/compute.c
nodist_plugins_backend_vulkan_backend_vulkan_la_SOURCES = $(vulkan_shader_headers)
plugins_backend_vulkan_backend_vulkan_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/plugins/common \
	-I$(top_builddir)/plugins/backend-vulkan $(VULKAN_CFLAGS)
plugins_backend_vulkan_backend_vulkan_la_CFLAGS = $(plugin_cflags)
plugins_backend_vulkan_backend_vulkan_la_LDFLAGS = $(plugin_ldflags) \
	-export-symbols-regex '^slm_plugin_entry$$'
plugins_backend_vulkan_backend_vulkan_la_LIBADD = $(VULKAN_LIBS)
BUILT_SOURCES += $(vulkan_shader_headers)
CLEANFILES += $(vulkan_shader_headers)
plugin_builddir_backend_vulkan = plugins/backend-vulkan
endif

# SPIR-V 1.3 (Vulkan 1.1) as a C initializer list of 32-bit words.
plugins/backend-vulkan/shaders/%.spv.h: plugins/backend-vulkan/shaders/%.comp \
		plugins/backend-vulkan/shaders/common.glsl
	$(AM_V_GEN)$(MKDIR_P) plugins/backend-vulkan/shaders && \
	$(GLSLC) --target-env=vulkan1.1 -O -mfmt=c \
		-I$(top_srcdir)/plugins/backend-vulkan/shaders -o $@.tmp $< && mv -f $@.tmp $@

# The same products with fp16 arithmetic (devices with shaderFloat16).
plugins/backend-vulkan/shaders/matmul-fp16.spv.h: plugins/backend-vulkan/shaders/matmul.comp \
		plugins/backend-vulkan/shaders/common.glsl
	$(AM_V_GEN)$(MKDIR_P) plugins/backend-vulkan/shaders && \
	$(GLSLC) --target-env=vulkan1.1 -O -mfmt=c -DFP16_ARITH \
		-I$(top_srcdir)/plugins/backend-vulkan/shaders -o $@.tmp $< && mv -f $@.tmp $@
