/* The core's side of trainer plugins for the training job: the method that serves
 * a name, and the user's settings checked against the options it declares. */
#ifndef SLMOPS_INTERNAL_TRAINER_H
#define SLMOPS_INTERNAL_TRAINER_H

#include <stddef.h>

#include <jansson.h>

#include <slmops/error.h>
#include <slmops/plugin-trainer.h>
#include <slmops/registry.h>

/* kind-trainer.c: the method `method` of the best usable trainer plugin listing it
 * (loaded now; it must speak interface version 2), or NULL with err filled.
 * *plugin (may be NULL) gets the plugin's name. */
const slm_trainer_method_t *slm__trainer_method(slm_registry_t *reg, const char *method,
                                                const char **plugin, slm_error_t *err);

/* trainer-options.c: a method's settings, checked. */
typedef struct slm__trainer_options slm__trainer_options_t;

/* Check `json` (a JSON object's text; NULL or "" is {}) against m's options: an
 * unknown key, a wrong type or a value out of range is an error naming the method
 * and the setting. Defaults fill what the user left out. */
slm__trainer_options_t *slm__trainer_options_new(const slm_trainer_method_t *m, const char *json,
                                                 slm_error_t *err);
/* The table prepare receives; valid until slm__trainer_options_free. */
const slm_trainer_options_t *slm__trainer_options_table(const slm__trainer_options_t *o);
void slm__trainer_options_free(slm__trainer_options_t *o);

/* 0 when v suits option o (type, range, a non-empty list), else SLM_E_INVALID and
 * why ("is 0, outside 1..256") in why. */
int slm__trainer_option_check(const slm_trainer_option_t *o, const json_t *v, char *why,
                              size_t size);

#endif
