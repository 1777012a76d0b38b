/* Inside the atomic-output module: the fixed table of temporaries in flight that a
 * signal handler may empty (output-signal.c), shared with output.c. */
#ifndef SLMOPS_INTERNAL_OUTPUT_H
#define SLMOPS_INTERNAL_OUTPUT_H

#include <stdbool.h>
#include <slmops/error.h>

/* Temporaries are named OUT TMP_MARK PID.XXXXXX. */
#define SLM__OUTPUT_TMP_MARK ".slmops-tmp."

/* dir "/" name, dirname and basename of path; malloc'ed, NULL when out of memory. */
char *slm__path_join(const char *dir, const char *name);
char *slm__path_dir(const char *path);
char *slm__path_base(const char *path);

/* An existing folder may be replaced when it holds nothing but regular files
 * named in names; shown is how messages name it. */
int slm__output_check_folder(const char *shown, const char *target, const char *const *names,
                             slm_error_t *err);

/* Remove the temporaries for target whose writers are gone (output-stale.c). */
void slm__output_remove_dead(const char *target);

/* Register a temporary (a file, or a folder of files) for removal on a signal;
 * returns its slot, or -1 when the table is full or the path too long. */
int slm__output_register(const char *path, bool folder);
void slm__output_unregister(int slot);

/* Between enter and leave the calling thread's SIGTERM/SIGHUP/SIGINT are blocked
 * and a handler on another thread waits; worker threads block those signals
 * altogether, so a rename is never cut in half by the clean-up. */
void slm__output_critical_enter(void);
void slm__output_critical_leave(void);

/* Remove a file, or a folder and the files in it; async-signal-safe. */
void slm__output_remove(const char *path, bool folder);

#endif
