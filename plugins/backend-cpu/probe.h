/* The variant's start-up probe (probe.c). */
#ifndef SLMOPS_CPU_PROBE_H
#define SLMOPS_CPU_PROBE_H

#include <stddef.h>

/* NULL when this variant's own instructions ran fine in a child process (or when the
 * variant has none worth probing), else why not, written into why. */
const char *cpu_probe_isa(char *why, size_t len);

#endif
