# llama2.c format plugin: checkpoints v0/v1/v2 and tokenizer.bin (read only).
# llama2c_plugin_sources (all but the entry point) are also compiled into
# tests/llama2c's sanitizer build.
llama2c_plugin_sources = \
	plugins/format-llama2c/llama2c.h \
	plugins/format-llama2c/llama2c.c \
	plugins/format-llama2c/checkpoint.c \
	plugins/format-llama2c/tokenizer.c

plugin_LTLIBRARIES += plugins/format-llama2c/format-llama2c.la
plugins_format_llama2c_format_llama2c_la_SOURCES = $(llama2c_plugin_sources) \
	plugins/format-llama2c/plugin.c
plugins_format_llama2c_format_llama2c_la_CFLAGS = $(plugin_cflags)
plugins_format_llama2c_format_llama2c_la_LDFLAGS = $(plugin_ldflags) \
	-export-symbols-regex '^slm_plugin_entry$$'
plugins_format_llama2c_format_llama2c_la_LIBADD = plugins/common/libslmplugin_common.la -lm
# Where manifests/local.mk finds the built library for the uninstalled manifest.
plugin_builddir_format_llama2c = plugins/format-llama2c
