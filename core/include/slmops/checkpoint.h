/* Training checkpoints: folders ROOT/step-NNNNNNNN written atomically (a temporary
 * folder, every file and the folder synced, then renamed), each with a manifest of
 * its files' sizes and SHA-256, so that a truncated or corrupted checkpoint (a byte
 * flipped, a file missing) is refused naming the file, a job killed while writing
 * one leaves the previous one intact, and only the newest ones are kept. */
#ifndef SLMOPS_CHECKPOINT_H
#define SLMOPS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The file every checkpoint folder holds last: {"step": N, "files": {NAME: {"size": S,
 * "sha256": HEX}}}. */
#define SLM_CHECKPOINT_MANIFEST "manifest.json"

typedef struct slm_checkpoint_writer slm_checkpoint_writer_t;

/* Start ROOT/step-NNNNNNNN (ROOT is created if missing). Leftovers of writers that
 * died while writing a checkpoint under ROOT are removed. */
int slm_checkpoint_begin(const char *root, uint64_t step, slm_checkpoint_writer_t **out,
                         slm_error_t *err);
/* The temporary folder the checkpoint's files go in (by slm_checkpoint_put, or by
 * any writer that creates files there, such as slm_model_file_save). */
const char *slm_checkpoint_dir(const slm_checkpoint_writer_t *w);
/* A file of the checkpoint from bytes (name: no '/', not the manifest's). */
int slm_checkpoint_put(slm_checkpoint_writer_t *w, const char *name, const void *data, size_t n,
                       slm_error_t *err);
/* Hash every file of the folder into the manifest, sync and rename it into place,
 * then remove all but the newest `keep` checkpoints of ROOT (0: keep all). *path
 * (optional; free()) is the checkpoint's folder. Frees w whatever happens. */
int slm_checkpoint_commit(slm_checkpoint_writer_t *w, uint32_t keep, char **path,
                          slm_error_t *err);
/* Remove the temporary folder and free w (NULL is a no-op). */
void slm_checkpoint_abort(slm_checkpoint_writer_t *w);

/* Check a checkpoint folder against its manifest: every file present, of its size
 * and SHA-256, and nothing listed missing. *step (optional) is its step. */
int slm_checkpoint_verify(const char *dir, uint64_t *step, slm_error_t *err);
/* DIR itself when it is a checkpoint (it has a manifest), else the newest checkpoint
 * under DIR that verifies (a damaged newer one is skipped with a warning naming it).
 * SLM_E_NOT_FOUND when there is none. *path is freed by the caller. */
int slm_checkpoint_find(const char *dir, char **path, slm_error_t *err);
/* The whole file NAME of a checkpoint (NUL-terminated; free()). */
int slm_checkpoint_read(const char *dir, const char *name, char **data, size_t *n,
                        slm_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
