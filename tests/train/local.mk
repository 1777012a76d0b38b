# tests/train: what training jobs share (issue 8): the optimizer module (updates
# against a double-precision reference, clipping, schedules, saved states), the
# training data and checkpoints.
check_PROGRAMS += tests/train/test-optim
TESTS += tests/train/test-optim
tests_train_test_optim_SOURCES = tests/train/test-optim.c tests/compute/common.c \
	tests/compute/common.h
tests_train_test_optim_CFLAGS = $(test_cflags)
tests_train_test_optim_LDADD = $(test_libs) -lm

check_PROGRAMS += tests/train/test-dataset
TESTS += tests/train/test-dataset
tests_train_test_dataset_SOURCES = tests/train/test-dataset.c
tests_train_test_dataset_CFLAGS = $(test_cflags)
tests_train_test_dataset_LDADD = $(test_libs)

check_PROGRAMS += tests/train/test-checkpoint
TESTS += tests/train/test-checkpoint
tests_train_test_checkpoint_SOURCES = tests/train/test-checkpoint.c
tests_train_test_checkpoint_CFLAGS = $(test_cflags)
tests_train_test_checkpoint_LDADD = $(test_libs)

# `slmops finetune` (issue 8, acceptance 3 and 4): it learns (a short text by heart,
# held-out perplexity on tinyshakespeare for LoRA, full and QLoRA), resume and faults,
# and a method's own loss terms (add_loss, with tests/registry's fake trainer).
TESTS += tests/train/finetune-learns.sh tests/train/finetune-resume.sh \
	tests/train/finetune-loss.sh
EXTRA_DIST += tests/train/finetune-learns.sh tests/train/finetune-resume.sh \
	tests/train/finetune-loss.sh \
	tests/train/dump_check.py

# The train job through the job contract (progress figures, report, a cancel that
# checkpoints, a resumed job, options refused by name).
check_PROGRAMS += tests/train/test-train-job
TESTS += tests/train/test-train-job
tests_train_test_train_job_SOURCES = tests/train/test-train-job.c
tests_train_test_train_job_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_train_test_train_job_LDADD = $(test_libs) $(JANSSON_LIBS) -lm

# Gradients and AdamW loss curves against PyTorch and PEFT (acceptance 1 of issue 8).
TESTS += tests/train/torch-oracle.sh
EXTRA_DIST += tests/train/torch-oracle.sh tests/train/torch_oracle.py

# Training one adapter on top of frozen ones.
TESTS += tests/train/finetune-stacked.sh
EXTRA_DIST += tests/train/finetune-stacked.sh
