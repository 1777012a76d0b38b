/* Registering the traits of plugin-defined (quantized) types. */
#ifndef SLMOPS_INTERNAL_TYPES_H
#define SLMOPS_INTERNAL_TYPES_H

#include <stdint.h>

/* 0 on success (or identical re-registration), -1 on a conflicting or bad entry. */
int slm__type_register(int type, const char *name, uint32_t block, uint32_t size);

#endif
