/* The slmops application API in one include. */
#ifndef SLMOPS_SLMOPS_H
#define SLMOPS_SLMOPS_H

#include <slmops/error.h>
#include <slmops/log.h>
#include <slmops/types.h>
#include <slmops/ops.h>
#include <slmops/registry.h>
#include <slmops/device.h>
#include <slmops/graph.h>
#include <slmops/sched.h>
#include <slmops/version.h>

#endif
