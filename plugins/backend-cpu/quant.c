/* The table behind cpu_qtype_get: every quantized weight type this backend runs,
 * each entry compiled by its family's file with this variant's ISA flags. */
#include "config.h"

#include <stddef.h>

#include "quant-types.h"

static const cpu_qtype_t *const qtypes[] = {
    &cpu_qtype_q4_0, &cpu_qtype_q4_1, &cpu_qtype_q5_0, &cpu_qtype_q5_1, &cpu_qtype_q8_0,
    &cpu_qtype_q4_k, &cpu_qtype_q5_k, &cpu_qtype_q6_k, &cpu_qtype_nf4,
};

const cpu_qtype_t *cpu_qtype_get(int type)
{
    for (size_t i = 0; i < sizeof qtypes / sizeof qtypes[0]; i++)
        if (qtypes[i]->type == type)
            return qtypes[i];
    return NULL;
}
