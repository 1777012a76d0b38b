/* Test tool for the safetensors oracle: reads IN with whichever format plugin
 * recognises it and writes OUT through slm_model_file_save (FORMAT optional). */
#include "config.h"

#include <stdio.h>

#include <slmops/model-file.h>
#include <slmops/registry.h>

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s IN OUT [FORMAT]\n", argv[0]);
        return 2;
    }
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    slm_model_file_t *mf = NULL;
    int rc = reg ? slm_model_file_open(reg, argv[1], NULL, &mf, &err) : err.code;
    if (rc == SLM_OK)
        rc = slm_model_file_save(mf, reg, argv[2], argc == 4 ? argv[3] : NULL, &err);
    if (rc != SLM_OK)
        fprintf(stderr, "st-convert: %s\n", err.message);
    slm_model_file_free(mf);
    slm_registry_free(reg);
    return rc == SLM_OK ? 0 : 1;
}
