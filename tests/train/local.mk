# tests/train build fragment: the optimizer module (updates against a double-precision
# reference, clipping, schedules, saved states).
check_PROGRAMS += tests/train/test-optim
TESTS += tests/train/test-optim
tests_train_test_optim_SOURCES = tests/train/test-optim.c tests/compute/common.c \
	tests/compute/common.h
tests_train_test_optim_CFLAGS = $(test_cflags)
tests_train_test_optim_LDADD = $(test_libs) -lm
