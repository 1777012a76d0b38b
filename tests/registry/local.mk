# tests/registry: the plugin registry, devices API and `slmops plugins/devices`
# against fake plugin libraries built here in several broken variants.
fake_plugin_ldflags = -module -avoid-version -shared -no-undefined -rpath /nowhere
fake_plugin_src = tests/registry/fake-plugin.c

check_LTLIBRARIES += \
	tests/registry/fake-good.la \
	tests/registry/fake-other.la \
	tests/registry/fake-noentry.la \
	tests/registry/fake-abi0.la \
	tests/registry/fake-abi99.la \
	tests/registry/fake-wrongname.la \
	tests/registry/fake-wrongkind.la \
	tests/registry/fake-wrongversion.la \
	tests/registry/fake-nulliface.la \
	tests/registry/fake-ctor-crash.la \
	tests/registry/fake-ctor-exit.la \
	tests/registry/fake-ctor-hang.la \
	tests/registry/fake-ctor-fork-crash.la

tests_registry_fake_good_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_good_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-good"'
tests_registry_fake_good_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_other_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_other_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-other"' \
	-DFAKE_SCORE=50 -DFAKE_TYPE=SLM_DEVICE_DGPU
tests_registry_fake_other_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_noentry_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_noentry_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-broken"' -DFAKE_NO_ENTRY
tests_registry_fake_noentry_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_abi0_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_abi0_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-broken"' -DFAKE_ABI=0
tests_registry_fake_abi0_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_abi99_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_abi99_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-broken"' -DFAKE_ABI=99
tests_registry_fake_abi99_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_wrongname_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_wrongname_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-wrongname"' \
	-DFAKE_DESC_NAME='"fake-impostor"'
tests_registry_fake_wrongname_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_wrongkind_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_wrongkind_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-wrongkind"' \
	-DFAKE_KIND=SLM_PLUGIN_KIND_QUANTIZER
tests_registry_fake_wrongkind_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_wrongversion_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_wrongversion_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-wrongversion"' \
	-DFAKE_VERSION='"9.9.9"'
tests_registry_fake_wrongversion_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_nulliface_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_nulliface_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-nulliface"' \
	-DFAKE_NULL_IFACE=1
tests_registry_fake_nulliface_la_LDFLAGS = $(fake_plugin_ldflags)

# Libraries that crash, exit or hang the moment they are loaded (constructors).
tests_registry_fake_ctor_crash_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_ctor_crash_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-broken"' -DFAKE_CTOR=1
tests_registry_fake_ctor_crash_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_ctor_exit_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_ctor_exit_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-broken"' -DFAKE_CTOR=2
tests_registry_fake_ctor_exit_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_ctor_hang_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_ctor_hang_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-broken"' -DFAKE_CTOR=3
tests_registry_fake_ctor_hang_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_ctor_fork_crash_la_SOURCES = $(fake_plugin_src)
tests_registry_fake_ctor_fork_crash_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-broken"' \
	-DFAKE_CTOR=4
tests_registry_fake_ctor_fork_crash_la_LDFLAGS = $(fake_plugin_ldflags)

# A fake trainer plugin: the good one (interface version 2), older and newer
# versions, and broken ones.
fake_trainer_src = tests/registry/fake-trainer.c
check_LTLIBRARIES += \
	tests/registry/fake-trainer.la \
	tests/registry/fake-trainer-v1.la \
	tests/registry/fake-trainer-v3.la \
	tests/registry/fake-trainer-v3-negotiating.la \
	tests/registry/fake-trainer-extra-method.la \
	tests/registry/fake-trainer-no-finish.la \
	tests/registry/fake-trainer-bad-default.la \
	tests/registry/fake-trainer-dup-method.la \
	tests/registry/fake-trainer-loss.la
tests_registry_fake_trainer_loss_la_SOURCES = $(fake_trainer_src)
tests_registry_fake_trainer_loss_la_CFLAGS = $(plugin_cflags) \
	-DFAKE_NAME='"fake-trainer-loss"' -DFAKE_ADD_LOSS=1
tests_registry_fake_trainer_loss_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_trainer_loss_la_LIBADD = -lm
tests_registry_fake_trainer_la_SOURCES = $(fake_trainer_src)
tests_registry_fake_trainer_la_CFLAGS = $(plugin_cflags) -DFAKE_NAME='"fake-trainer"'
tests_registry_fake_trainer_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_trainer_la_LIBADD = -lm
tests_registry_fake_trainer_v1_la_SOURCES = $(fake_trainer_src)
tests_registry_fake_trainer_v1_la_CFLAGS = $(plugin_cflags) \
	-DFAKE_NAME='"fake-trainer-v1"' -DFAKE_IFACE=1
tests_registry_fake_trainer_v1_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_trainer_v1_la_LIBADD = -lm
tests_registry_fake_trainer_v3_la_SOURCES = $(fake_trainer_src)
tests_registry_fake_trainer_v3_la_CFLAGS = $(plugin_cflags) \
	-DFAKE_NAME='"fake-trainer-v3"' -DFAKE_IFACE=3
tests_registry_fake_trainer_v3_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_trainer_v3_la_LIBADD = -lm
tests_registry_fake_trainer_v3_negotiating_la_SOURCES = $(fake_trainer_src)
tests_registry_fake_trainer_v3_negotiating_la_CFLAGS = $(plugin_cflags) \
	-DFAKE_NAME='"fake-trainer-v3-negotiating"' -DFAKE_IFACE=3 -DFAKE_NEGOTIATE=1
tests_registry_fake_trainer_v3_negotiating_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_trainer_v3_negotiating_la_LIBADD = -lm
tests_registry_fake_trainer_extra_method_la_SOURCES = $(fake_trainer_src)
tests_registry_fake_trainer_extra_method_la_CFLAGS = $(plugin_cflags) \
	-DFAKE_NAME='"fake-trainer-extra-method"' -DFAKE_EXTRA_METHOD=1
tests_registry_fake_trainer_extra_method_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_trainer_extra_method_la_LIBADD = -lm
tests_registry_fake_trainer_no_finish_la_SOURCES = $(fake_trainer_src)
tests_registry_fake_trainer_no_finish_la_CFLAGS = $(plugin_cflags) \
	-DFAKE_NAME='"fake-trainer-no-finish"' -DFAKE_NO_FINISH=1
tests_registry_fake_trainer_no_finish_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_trainer_no_finish_la_LIBADD = -lm
tests_registry_fake_trainer_bad_default_la_SOURCES = $(fake_trainer_src)
tests_registry_fake_trainer_bad_default_la_CFLAGS = $(plugin_cflags) \
	-DFAKE_NAME='"fake-trainer-bad-default"' -DFAKE_BAD_DEFAULT=1
tests_registry_fake_trainer_bad_default_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_trainer_bad_default_la_LIBADD = -lm
tests_registry_fake_trainer_dup_method_la_SOURCES = $(fake_trainer_src)
tests_registry_fake_trainer_dup_method_la_CFLAGS = $(plugin_cflags) \
	-DFAKE_NAME='"fake-trainer-dup-method"' -DFAKE_DUP_METHOD=1
tests_registry_fake_trainer_dup_method_la_LDFLAGS = $(fake_plugin_ldflags)
tests_registry_fake_trainer_dup_method_la_LIBADD = -lm

registry_test_helpers = tests/registry/helpers.c tests/registry/helpers.h

check_PROGRAMS += tests/registry/test-isolation
TESTS += tests/registry/test-isolation
tests_registry_test_isolation_SOURCES = tests/registry/test-isolation.c $(registry_test_helpers)
tests_registry_test_isolation_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_registry_test_isolation_LDADD = $(test_libs) $(JANSSON_LIBS)

check_PROGRAMS += tests/registry/test-scan
TESTS += tests/registry/test-scan
tests_registry_test_scan_SOURCES = tests/registry/test-scan.c $(registry_test_helpers)
tests_registry_test_scan_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_registry_test_scan_LDADD = $(test_libs) $(JANSSON_LIBS)

check_PROGRAMS += tests/registry/test-discovery
TESTS += tests/registry/test-discovery
tests_registry_test_discovery_SOURCES = tests/registry/test-discovery.c $(registry_test_helpers)
tests_registry_test_discovery_CFLAGS = $(test_cflags)
tests_registry_test_discovery_LDADD = $(test_libs)

check_PROGRAMS += tests/registry/test-variants
TESTS += tests/registry/test-variants
tests_registry_test_variants_SOURCES = tests/registry/test-variants.c $(registry_test_helpers)
tests_registry_test_variants_CFLAGS = $(test_cflags)
tests_registry_test_variants_LDADD = $(test_libs)

check_PROGRAMS += tests/registry/test-devices
TESTS += tests/registry/test-devices
tests_registry_test_devices_SOURCES = tests/registry/test-devices.c $(registry_test_helpers)
tests_registry_test_devices_CFLAGS = $(test_cflags)
tests_registry_test_devices_LDADD = $(test_libs)

# Internal entry points are not exported from libslmops.so: this test compiles
# the registry and the core utilities it needs into itself.
check_PROGRAMS += tests/registry/test-internal
TESTS += tests/registry/test-internal
tests_registry_test_internal_SOURCES = tests/registry/test-internal.c $(registry_test_helpers) \
	$(slm_registry_sources) core/util/error.c core/util/log.c core/util/types.c core/util/ops.c \
	core/util/input.c
tests_registry_test_internal_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_registry_test_internal_LDADD = $(CHECK_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS)

# The table of plugin kinds, and trainer plugins (interface version 2) through it.
check_PROGRAMS += tests/registry/test-kinds
TESTS += tests/registry/test-kinds
tests_registry_test_kinds_SOURCES = tests/registry/test-kinds.c $(registry_test_helpers) \
	$(slm_registry_sources) core/util/error.c core/util/log.c core/util/types.c core/util/ops.c \
	core/util/input.c
tests_registry_test_kinds_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_registry_test_kinds_LDADD = $(CHECK_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS) -lm

# Acceptance: `slmops plugins` next to each kind of broken manifest.
TESTS += tests/registry/cli-broken-manifests.sh
EXTRA_DIST += tests/registry/cli-broken-manifests.sh

# Item 22: the test environment hides plugins installed on the machine.
TESTS += tests/registry/cli-hermetic.sh
EXTRA_DIST += tests/registry/cli-hermetic.sh

# Item 7: format plugins are chosen by their manifests before any is loaded.
TESTS += tests/registry/cli-format-probing.sh
EXTRA_DIST += tests/registry/cli-format-probing.sh
# Items 15 and 16: what a model verb says when no format plugin reads a file.
TESTS += tests/registry/cli-format-messages.sh
EXTRA_DIST += tests/registry/cli-format-messages.sh

# Acceptance: libraries that crash, exit or hang while loading, or are replaced.
TESTS += tests/registry/cli-plugin-isolation.sh
EXTRA_DIST += tests/registry/cli-plugin-isolation.sh

# Issue 8: trainer plugins and unknown kinds as `slmops plugins` shows them.
TESTS += tests/registry/cli-trainers.sh
EXTRA_DIST += tests/registry/cli-trainers.sh
