# The trainer-full plugin (method full): a libtool module that declares what
# trains; the core's train job does the rest (docs/plugin-authoring.md, T1-T6).
plugin_LTLIBRARIES += plugins/trainer-full/trainer-full.la
plugins_trainer_full_trainer_full_la_SOURCES = plugins/trainer-full/plugin.c
plugins_trainer_full_trainer_full_la_CFLAGS = $(plugin_cflags)
plugins_trainer_full_trainer_full_la_LIBADD = plugins/common/libslmplugin_common.la -lm
plugins_trainer_full_trainer_full_la_LDFLAGS = $(plugin_ldflags) \
	-export-symbols-regex '^slm_plugin_entry$$'
# Where manifests/local.mk finds the built library for the uninstalled manifest.
plugin_builddir_trainer_full = plugins/trainer-full
