# tests/train: what training jobs share (issue 8): the training data.
check_PROGRAMS += tests/train/test-dataset
TESTS += tests/train/test-dataset
tests_train_test_dataset_SOURCES = tests/train/test-dataset.c
tests_train_test_dataset_CFLAGS = $(test_cflags)
tests_train_test_dataset_LDADD = $(test_libs)
