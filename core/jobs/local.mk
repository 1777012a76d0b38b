# Model jobs in the core library: quantize (with its evaluation and the mixes it
# reads as data), merge (LoRA adapters baked into a base), init (random models of
# a named shape), bench and train (fine-tuning through trainer plugins: train*.c);
# the job contract (slmops/job.h: job.c, jobrt.c) and its kinds (kind-*.c).
libslmops_la_SOURCES += \
	core/jobs/jobs.h \
	core/jobs/mix.h \
	core/jobs/mix-data.h \
	core/jobs/mix-file.c \
	core/jobs/mix.c \
	core/jobs/plan.c \
	core/jobs/policy.c \
	core/jobs/quantize.c \
	core/jobs/merge.c \
	core/jobs/eval.c \
	core/jobs/vocab.h \
	core/jobs/vocab.c \
	core/jobs/vocab-trim.c \
	core/jobs/init.c \
	core/jobs/bench.c \
	core/jobs/kind.h \
	core/jobs/job.c \
	core/jobs/jobrt.c \
	core/jobs/kind-model.c \
	core/jobs/kind-quantize.c \
	core/jobs/kind-eval.c \
	core/jobs/task.h \
	core/jobs/task-file.c \
	core/jobs/task-eval.c \
	core/jobs/task-norm.c \
	core/jobs/synth.h \
	core/jobs/synth-prompts.c \
	core/jobs/synth-filter.c \
	core/jobs/synth-responses.c \
	core/jobs/kind-synth.c \
	core/jobs/kind-distill.c \
	core/jobs/kind-bench.c \
	core/jobs/kind-init.c \
	core/jobs/kind-train.c \
	core/jobs/train.h \
	core/jobs/train-loop.c \
	core/jobs/train-plan.c \
	core/jobs/train-graph.c \
	core/jobs/train-teacher.c \
	core/jobs/train-dp.c \
	core/jobs/train-tcache.c \
	core/jobs/train-ckpt.c \
	core/jobs/train-save.c \
	core/jobs/train-names.c \
	core/jobs/train-rng.c \
	core/jobs/train-dump.c \
	core/jobs/train-loss.c
slmopsinclude_HEADERS += core/include/slmops/jobs.h core/include/slmops/job.h \
	core/include/slmops/merge.h
