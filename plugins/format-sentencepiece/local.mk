# SentencePiece format plugin: tokenizer.model (BPE ModelProto), read only.
# spm_plugin_sources (all but the entry point) are also compiled into
# tests/llama2c's sanitizer build.
spm_plugin_sources = \
	plugins/format-sentencepiece/sentencepiece.h \
	plugins/format-sentencepiece/sentencepiece.c

plugin_LTLIBRARIES += plugins/format-sentencepiece/format-sentencepiece.la
plugins_format_sentencepiece_format_sentencepiece_la_SOURCES = $(spm_plugin_sources) \
	plugins/format-sentencepiece/plugin.c
plugins_format_sentencepiece_format_sentencepiece_la_CFLAGS = $(plugin_cflags)
plugins_format_sentencepiece_format_sentencepiece_la_LIBADD = plugins/common/libslmplugin_common.la
plugins_format_sentencepiece_format_sentencepiece_la_LDFLAGS = $(plugin_ldflags) \
	-export-symbols-regex '^slm_plugin_entry$$'
# Where manifests/local.mk finds the built library for the uninstalled manifest.
plugin_builddir_format_sentencepiece = plugins/format-sentencepiece
