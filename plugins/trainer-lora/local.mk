# The trainer-lora plugin (methods lora and qlora): a libtool module that declares
# what trains; the core's train job does the rest (docs/plugin-authoring.md, T1-T6).
plugin_LTLIBRARIES += plugins/trainer-lora/trainer-lora.la
plugins_trainer_lora_trainer_lora_la_SOURCES = plugins/trainer-lora/plugin.c
plugins_trainer_lora_trainer_lora_la_CFLAGS = $(plugin_cflags)
plugins_trainer_lora_trainer_lora_la_LIBADD = plugins/common/libslmplugin_common.la -lm
plugins_trainer_lora_trainer_lora_la_LDFLAGS = $(plugin_ldflags) \
	-export-symbols-regex '^slm_plugin_entry$$'
# Where manifests/local.mk finds the built library for the uninstalled manifest.
plugin_builddir_trainer_lora = plugins/trainer-lora
