# The trainer-distill plugin (method kd): logit distillation as loss terms through
# add_loss; the core's train job runs the teacher and the rest (docs/decisions.md).
plugin_LTLIBRARIES += plugins/trainer-distill/trainer-distill.la
plugins_trainer_distill_trainer_distill_la_SOURCES = plugins/trainer-distill/plugin.c
plugins_trainer_distill_trainer_distill_la_CFLAGS = $(plugin_cflags)
plugins_trainer_distill_trainer_distill_la_LIBADD = plugins/common/libslmplugin_common.la -lm
plugins_trainer_distill_trainer_distill_la_LDFLAGS = $(plugin_ldflags) \
	-export-symbols-regex '^slm_plugin_entry$$'
# Where manifests/local.mk finds the built library for the uninstalled manifest.
plugin_builddir_trainer_distill = plugins/trainer-distill
