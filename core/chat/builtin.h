/* The built-in chat templates (Jinja sources) by name, for chat.c. */
#ifndef SLMOPS_CHAT_BUILTIN_H
#define SLMOPS_CHAT_BUILTIN_H

#include <stddef.h>

/* The i-th name, or NULL past the end. */
const char *slm__chat_builtin_name(size_t i);
/* The source of a named template, or NULL. */
const char *slm__chat_builtin_source(const char *name);

#endif
