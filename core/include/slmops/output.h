/* Atomic outputs: every file or folder a job writes is made under a temporary name
 * beside OUT, synced and renamed into place, so OUT is either the old or the new one.
 *
 *   slm_output_prepare(OUT, params)  checks OUT, creates the temporary, registers it
 *   ... the writer fills slm_output_path(o) ...
 *   slm_output_commit(o) / slm_output_abort(o)
 *
 * OUT rules (docs/slmops.1, "OUTPUT FILES"): a symbolic link is followed to the file
 * it names, which is replaced (the link is kept; a dangling link's target is
 * created); an OUT that exists and is not a regular file (a folder, for folder
 * outputs) is refused; so is an OUT that is one of the job's inputs. Temporary names
 * are OUT.slmops-tmp.PID.XXXXXX; the writer holds a lock on its own, and a later
 * prepare for the same OUT removes the ones no live process holds (a process killed
 * with SIGKILL leaves one). A process that catches SIGTERM, SIGHUP or SIGINT calls
 * slm_output_signal_cleanup() from its handler to remove the temporaries in flight. */
#ifndef SLMOPS_OUTPUT_H
#define SLMOPS_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_output slm_output_t;

/* What an output is (slm_output_params_t.layout). */
#define SLM_OUTPUT_FILE 0     /* one regular file */
#define SLM_OUTPUT_FOLDER 1   /* a folder of regular files */
#define SLM_OUTPUT_ANY 2      /* slm_output_check only: an existing folder is left to the
                               * writer to judge (writers that do their own renaming) */

typedef struct slm_output_params {
    uint32_t struct_size;
    int layout;                       /* SLM_OUTPUT_FILE or SLM_OUTPUT_FOLDER */
    bool in_place;                    /* OUT may be one of the inputs: the verb says so */
    const char *const *inputs;        /* files and folders the job reads */
    size_t n_inputs;
    /* Folders: an existing OUT is replaced only when it holds nothing but entries of
     * these names (a NULL-terminated list; NULL: only when it is empty). */
    const char *const *folder_names;
} slm_output_params_t;

/* Defaults: a file, not in place, no inputs. */
void slm_output_params_init(slm_output_params_t *p);

/* The checks slm_output_prepare makes, creating nothing, so that a job can refuse
 * a bad OUT before its work. *target (optional; free()) gets OUT with symbolic
 * links followed. */
int slm_output_check(const char *path, const slm_output_params_t *p, char **target,
                     slm_error_t *err);

/* Check OUT, remove dead writers' temporaries for it, and create an empty
 * temporary (a file, or a folder) beside the file OUT resolves to. */
int slm_output_prepare(const char *path, const slm_output_params_t *p, slm_output_t **out,
                       slm_error_t *err);
/* The temporary the writer fills: an empty regular file to open with O_TRUNC, or
 * an empty folder to create files in. Do not rename or remove it. */
const char *slm_output_path(const slm_output_t *o);
/* OUT with symbolic links followed: the name the result will have. */
const char *slm_output_target(const slm_output_t *o);

/* Sync the temporary (each file of a folder, then the folder), rename it over the
 * target (an existing folder is exchanged atomically, then removed), sync the
 * target's folder. Frees o whatever happens; on failure the temporary is removed
 * and the old OUT is untouched. */
int slm_output_commit(slm_output_t *o, slm_error_t *err);
/* Remove the temporary and free o (NULL is a no-op). */
void slm_output_abort(slm_output_t *o);

/* Remove every temporary in flight in this process. Async-signal-safe (only open,
 * openat, lseek, getdents64, unlinkat, unlink, rmdir, close and poll; errno is kept):
 * for SIGTERM/SIGHUP/SIGINT handlers, which then _exit(128 + signal). */
void slm_output_signal_cleanup(void);

#ifdef __cplusplus
}
#endif
#endif
