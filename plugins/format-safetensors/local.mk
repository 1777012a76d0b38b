# Hugging Face safetensors folders: config.json + model.safetensors (or shards) +
# tokenizer files, and PEFT LoRA adapter folders, read through mmap and written atomically.
# safetensors_plugin_sources are also compiled into tests/safetensors' sanitizer build.
safetensors_plugin_sources = \
	plugins/format-safetensors/st.h \
	plugins/format-safetensors/plugin.c \
	plugins/format-safetensors/header.c \
	plugins/format-safetensors/meta.c \
	plugins/format-safetensors/kv.c \
	plugins/format-safetensors/names.c \
	plugins/format-safetensors/peft.c \
	plugins/format-safetensors/tokenizer-read.c \
	plugins/format-safetensors/tokenizer-write.c \
	plugins/format-safetensors/read.c \
	plugins/format-safetensors/write.c

plugin_LTLIBRARIES += plugins/format-safetensors/format-safetensors.la
plugins_format_safetensors_format_safetensors_la_SOURCES = $(safetensors_plugin_sources)
plugins_format_safetensors_format_safetensors_la_CFLAGS = $(plugin_cflags) $(JANSSON_CFLAGS)
plugins_format_safetensors_format_safetensors_la_LIBADD = plugins/common/libslmplugin_common.la $(JANSSON_LIBS)
plugins_format_safetensors_format_safetensors_la_LDFLAGS = $(plugin_ldflags) \
	-export-symbols-regex '^slm_plugin_entry$$'
# Where manifests/local.mk finds the built library for the uninstalled manifest.
plugin_builddir_format_safetensors = plugins/format-safetensors
EXTRA_DIST += plugins/format-safetensors/README.md
