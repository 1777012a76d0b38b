/* SentencePiece tokenizer.model files as the plugin's parts share them: the
 * reader's slots, and the host's log slot. */
#ifndef SLMOPS_FORMAT_SENTENCEPIECE_H
#define SLMOPS_FORMAT_SENTENCEPIECE_H

#include <stddef.h>
#include <stdint.h>

#include <slmops/plugin-format.h>

int spm_probe(const char *path, const uint8_t *head, size_t head_len);
int spm_read(const char *path, const slm_format_sink_t *sink, slm_error_t *err);

/* The host's log slot, or NULL before the entry point ran. */
extern const slm_host_t *spm_host;

#endif
