/* The slmops application API in one include: every public header, so a program
 * (and tests/packaging/install-layout.sh) can include this one alone. */
#ifndef SLMOPS_SLMOPS_H
#define SLMOPS_SLMOPS_H

#include <slmops/error.h>
#include <slmops/log.h>
#include <slmops/version.h>
#include <slmops/types.h>
#include <slmops/ops.h>
#include <slmops/registry.h>
#include <slmops/device.h>
#include <slmops/graph.h>
#include <slmops/sched.h>
#include <slmops/optim.h>
#include <slmops/quantize.h>
#include <slmops/input.h>
#include <slmops/output.h>
#include <slmops/model-file.h>
#include <slmops/adapter.h>
#include <slmops/tokenizer.h>
#include <slmops/chat.h>
#include <slmops/sampler.h>
#include <slmops/model.h>
#include <slmops/json-filter.h>
#include <slmops/generation.h>
#include <slmops/eval.h>
#include <slmops/task.h>
#include <slmops/jobs.h>
#include <slmops/job.h>
#include <slmops/merge.h>
#include <slmops/dataset.h>
#include <slmops/checkpoint.h>
#include <slmops/comm.h>

#endif
