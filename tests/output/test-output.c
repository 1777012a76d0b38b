/* The atomic-output module (slmops/output.h) and model-file saving through it: what
 * OUT may be, temporaries of dead writers, signal cleanup, version-1 format plugins. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <slmops/slmops.h>

static char dir[512];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/slmops-output-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *at(const char *name)
{
    static char bufs[4][PATH_MAX];
    static int k;
    char *p = bufs[k++ % 4];
    snprintf(p, PATH_MAX, "%s/%s", dir, name);
    return p;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static const char *get(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Names in the test folder, sorted, one line each (to see leftovers). */
static const char *listing(const char *folder)
{
    static char buf[4096];
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "ls -A '%s'", folder);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
    if (p)
        pclose(p);
    buf[n] = '\0';
    return buf;
}

static slm_error_t err;

static slm_output_params_t params(int layout)
{
    slm_output_params_t p;
    slm_output_params_init(&p);
    p.layout = layout;
    slm_error_init(&err);
    return p;
}

/* prepare, write text into the temporary, commit. */
static int write_out(const char *path, const slm_output_params_t *p, const char *text)
{
    slm_output_t *o;
    int rc = slm_output_prepare(path, p, &o, &err);
    if (rc)
        return rc;
    put(slm_output_path(o), text);
    return slm_output_commit(o, &err);
}

static void expect_refused(const char *path, int layout, const char *needle)
{
    slm_output_params_t p = params(layout);
    slm_output_t *o = NULL;
    ck_assert_int_eq(slm_output_prepare(path, &p, &o, &err), SLM_E_INVALID);
    ck_assert_ptr_null(o);
    ck_assert_msg(strstr(err.message, needle), "'%s' lacks '%s'", err.message, needle);
    ck_assert_msg(!strchr(err.message, '\n'), "two lines: %s", err.message);
}

/* ---- item 1: what OUT may be ---- */

START_TEST(file_is_written_and_nothing_is_left)
{
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    ck_assert_msg(write_out(at("out.bin"), &p, "new\n") == SLM_OK, "%s", err.message);
    ck_assert_str_eq(get(at("out.bin")), "new\n");
    ck_assert_str_eq(listing(dir), "out.bin\n");
}
END_TEST

START_TEST(temporary_name_holds_the_pid)
{
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    slm_output_t *o;
    ck_assert_int_eq(slm_output_prepare(at("m.gguf"), &p, &o, &err), SLM_OK);
    char want[1024];
    snprintf(want, sizeof want, "%s/m.gguf.slmops-tmp.%d.", dir, (int)getpid());
    ck_assert_msg(strncmp(slm_output_path(o), want, strlen(want)) == 0, "%s", slm_output_path(o));
    ck_assert_uint_eq(strlen(slm_output_path(o)), strlen(want) + 6);
    ck_assert_int_eq(access(slm_output_path(o), F_OK), 0);
    slm_output_abort(o);
    ck_assert_str_eq(listing(dir), "");
}
END_TEST

START_TEST(refuses_a_fifo)
{
    ck_assert_int_eq(mkfifo(at("out.gguf"), 0644), 0);
    expect_refused(at("out.gguf"), SLM_OUTPUT_FILE, "is a FIFO, not a regular file; not replacing it");
    struct stat st;
    ck_assert(lstat(at("out.gguf"), &st) == 0 && S_ISFIFO(st.st_mode));
    ck_assert_str_eq(listing(dir), "out.gguf\n");
}
END_TEST

START_TEST(refuses_a_socket)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", at("sock"));
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    expect_refused(at("sock"), SLM_OUTPUT_FILE, "is a socket, not a regular file");
    struct stat st;
    ck_assert(lstat(at("sock"), &st) == 0 && S_ISSOCK(st.st_mode));
    close(s);
}
END_TEST

START_TEST(refuses_a_directory_for_a_file)
{
    ck_assert_int_eq(mkdir(at("out.gguf"), 0755), 0);
    expect_refused(at("out.gguf"), SLM_OUTPUT_FILE, "is a directory, not a regular file");
}
END_TEST

/* A device node: made here when we may (root), else /dev/null through the
 * check alone, which creates nothing even if it were wrong. */
START_TEST(refuses_a_device_node)
{
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    ck_assert_int_eq(slm_output_check("/dev/null", &p, NULL, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "/dev/null: is a character device, not a regular file; "
                         "not replacing it"), "%s", err.message);
    if (mknod(at("null"), S_IFCHR | 0666, makedev(1, 3)) != 0) {
        printf("note: mknod not permitted (%s): the made-up node case needs root\n", strerror(errno));
        return;
    }
    expect_refused(at("null"), SLM_OUTPUT_FILE, "is a character device, not a regular file");
    struct stat st;
    ck_assert(lstat(at("null"), &st) == 0 && S_ISCHR(st.st_mode));
}
END_TEST

START_TEST(symlink_is_kept_and_its_target_replaced)
{
    put(at("real.gguf"), "old\n");
    ck_assert_int_eq(symlink("real.gguf", at("link.gguf")), 0);
    ck_assert_int_eq(symlink(at("link.gguf"), at("link2.gguf")), 0);   /* a chain */
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    ck_assert_msg(write_out(at("link2.gguf"), &p, "new\n") == SLM_OK, "%s", err.message);
    struct stat st;
    ck_assert(lstat(at("link.gguf"), &st) == 0 && S_ISLNK(st.st_mode));
    ck_assert(lstat(at("link2.gguf"), &st) == 0 && S_ISLNK(st.st_mode));
    ck_assert_str_eq(get(at("real.gguf")), "new\n");
    ck_assert_str_eq(listing(dir), "link.gguf\nlink2.gguf\nreal.gguf\n");
}
END_TEST

START_TEST(dangling_symlink_target_is_created)
{
    ck_assert_int_eq(symlink("made.gguf", at("link.gguf")), 0);
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    ck_assert_msg(write_out(at("link.gguf"), &p, "new\n") == SLM_OK, "%s", err.message);
    struct stat st;
    ck_assert(lstat(at("link.gguf"), &st) == 0 && S_ISLNK(st.st_mode));
    ck_assert_str_eq(get(at("made.gguf")), "new\n");
}
END_TEST

START_TEST(symlink_to_a_fifo_is_refused)
{
    ck_assert_int_eq(mkfifo(at("pipe"), 0644), 0);
    ck_assert_int_eq(symlink("pipe", at("out.gguf")), 0);
    expect_refused(at("out.gguf"), SLM_OUTPUT_FILE, "(a link to");
    ck_assert_msg(strstr(err.message, "is a FIFO"), "%s", err.message);
}
END_TEST

START_TEST(replaced_file_keeps_its_mode)
{
    put(at("out.bin"), "old\n");
    ck_assert_int_eq(chmod(at("out.bin"), 0640), 0);
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    ck_assert_int_eq(write_out(at("out.bin"), &p, "new\n"), SLM_OK);
    struct stat st;
    ck_assert_int_eq(stat(at("out.bin"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0640);
    /* A read-only file too: its mode is applied last, after the writer. */
    ck_assert_int_eq(chmod(at("out.bin"), 0444), 0);
    ck_assert_msg(write_out(at("out.bin"), &p, "newer\n") == SLM_OK, "%s", err.message);
    ck_assert_int_eq(stat(at("out.bin"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0444);
    ck_assert_str_eq(get(at("out.bin")), "newer\n");
}
END_TEST

/* ---- item 2: OUT is an input ---- */

START_TEST(refuses_an_input_by_any_name)
{
    put(at("in.gguf"), "input\n");
    ck_assert_int_eq(link(at("in.gguf"), at("hard.gguf")), 0);
    ck_assert_int_eq(symlink("in.gguf", at("soft.gguf")), 0);
    const char *names[] = {at("in.gguf"), at("hard.gguf"), at("soft.gguf")};
    for (size_t i = 0; i < 3; i++) {
        const char *inputs[] = {at("in.gguf")};
        slm_output_params_t p = params(SLM_OUTPUT_FILE);
        p.inputs = inputs;
        p.n_inputs = 1;
        slm_output_t *o = NULL;
        ck_assert_int_eq(slm_output_prepare(names[i], &p, &o, &err), SLM_E_INVALID);
        ck_assert_msg(strstr(err.message, "refusing to overwrite the input"), "%s", err.message);
        ck_assert_str_eq(get(at("in.gguf")), "input\n");
        /* A verb that documents in-place operation may. */
        p.in_place = true;
        ck_assert_int_eq(write_out(names[i], &p, "input\n"), SLM_OK);
    }
}
END_TEST

/* ---- folders ---- */

static const char *const names[] = {"a.json", "b.bin", NULL};

START_TEST(folder_replaces_an_earlier_output)
{
    ck_assert_int_eq(mkdir(at("hf"), 0755), 0);
    put(at("hf/a.json"), "old\n");
    slm_output_params_t p = params(SLM_OUTPUT_FOLDER);
    p.folder_names = names;
    slm_output_t *o;
    ck_assert_msg(slm_output_prepare(at("hf"), &p, &o, &err) == SLM_OK, "%s", err.message);
    char f[PATH_MAX];
    snprintf(f, sizeof f, "%s/b.bin", slm_output_path(o));
    put(f, "new\n");
    ck_assert_msg(slm_output_commit(o, &err) == SLM_OK, "%s", err.message);
    ck_assert_str_eq(listing(at("hf")), "b.bin\n");
    ck_assert_str_eq(listing(dir), "hf\n");
}
END_TEST

START_TEST(folder_with_foreign_files_is_kept)
{
    ck_assert_int_eq(mkdir(at("hf"), 0755), 0);
    put(at("hf/a.json"), "old\n");
    put(at("hf/notes.txt"), "precious\n");
    slm_output_params_t p = params(SLM_OUTPUT_FOLDER);
    p.folder_names = names;
    slm_output_t *o = NULL;
    ck_assert_int_eq(slm_output_prepare(at("hf"), &p, &o, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "'notes.txt', which slmops did not write"), "%s", err.message);
    ck_assert_str_eq(get(at("hf/notes.txt")), "precious\n");
}
END_TEST

START_TEST(folder_holding_an_input_is_kept)
{
    ck_assert_int_eq(mkdir(at("hf"), 0755), 0);
    put(at("hf/b.bin"), "input\n");
    const char *inputs[] = {at("hf/b.bin")};
    slm_output_params_t p = params(SLM_OUTPUT_FOLDER);
    p.folder_names = names;
    p.inputs = inputs;
    p.n_inputs = 1;
    slm_output_t *o = NULL;
    ck_assert_int_eq(slm_output_prepare(at("hf"), &p, &o, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "holds the input"), "%s", err.message);
    ck_assert_str_eq(get(at("hf/b.bin")), "input\n");
}
END_TEST

START_TEST(folder_output_over_a_file_is_refused)
{
    put(at("hf"), "a file\n");
    expect_refused(at("hf"), SLM_OUTPUT_FOLDER, "is a regular file");
}
END_TEST

/* ---- item 4: temporaries of dead writers ---- */

static pid_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    return pid;
}

/* A child that sleeps, holding (when lock) an flock on path. */
static pid_t live_child(const char *path, bool lock)
{
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = lock ? open(path, O_RDONLY) : -1;
        if (lock && (fd < 0 || flock(fd, LOCK_EX) != 0))
            _exit(1);
        ssize_t w = write(ready[1], "x", 1);
        (void)w;
        pause();
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    close(ready[1]);
    return pid;
}

static void stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static const char *temp_name(const char *base, pid_t pid, const char *sfx)
{
    static char name[1024];
    snprintf(name, sizeof name, "%s/%s.slmops-tmp.%d.%s", dir, base, (int)pid, sfx);
    return name;
}

static void age(const char *path)
{
    struct timespec t[2] = {{.tv_sec = time(NULL) - 3600}, {.tv_sec = time(NULL) - 3600}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, t, 0), 0);
}

START_TEST(dead_writers_temporaries_are_removed)
{
    char gone[1024], folder[1024], other[1024], odd[1024];
    pid_t d = dead_pid();
    snprintf(gone, sizeof gone, "%s", temp_name("m.gguf", d, "aB3xY9"));
    snprintf(folder, sizeof folder, "%s", temp_name("m.gguf", d, "Folder"));
    snprintf(other, sizeof other, "%s", temp_name("other.gguf", d, "aB3xY9"));
    snprintf(odd, sizeof odd, "%s", temp_name("m.gguf", d, "toolongsuffix"));
    put(gone, "partial");
    ck_assert_int_eq(mkdir(folder, 0755), 0);
    char inner[PATH_MAX];
    snprintf(inner, sizeof inner, "%s/model.safetensors", folder);
    put(inner, "partial");
    put(other, "another output's");
    put(odd, "not our pattern");
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    ck_assert_int_eq(write_out(at("m.gguf"), &p, "new\n"), SLM_OK);
    ck_assert_int_eq(access(gone, F_OK), -1);
    ck_assert_int_eq(access(folder, F_OK), -1);
    ck_assert_int_eq(access(other, F_OK), 0);
    ck_assert_int_eq(access(odd, F_OK), 0);
}
END_TEST

START_TEST(leftover_with_our_own_pid_is_removed)
{
    /* A container gives every run the same PID: a temporary named with ours, older
     * than this process and unlocked, was left by an earlier run. */
    char name[1024];
    snprintf(name, sizeof name, "%s", temp_name("m.gguf", getpid(), "ownPid"));
    put(name, "partial");
    struct timespec old[2] = {{.tv_sec = time(NULL) - 3600}, {.tv_sec = time(NULL) - 3600}};
    ck_assert_int_eq(utimensat(AT_FDCWD, name, old, 0), 0);
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    ck_assert_int_eq(write_out(at("m.gguf"), &p, "new\n"), SLM_OK);
    ck_assert_int_eq(access(name, F_OK), -1);
}
END_TEST

START_TEST(live_writers_temporary_is_kept)
{
    /* Its PID is alive and it holds the lock: even an old file is in use. */
    char name[1024];
    snprintf(name, sizeof name, "%s", temp_name("m.gguf", 0, "placeh"));
    put(name, "in progress");
    pid_t w = live_child(name, true);
    char real[1024];
    snprintf(real, sizeof real, "%s", temp_name("m.gguf", w, "aB3xY9"));
    ck_assert_int_eq(rename(name, real), 0);
    age(real);
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    ck_assert_int_eq(write_out(at("m.gguf"), &p, "new\n"), SLM_OK);
    ck_assert_int_eq(access(real, F_OK), 0);
    stop(w);
}
END_TEST

START_TEST(reused_pid_does_not_keep_a_temporary)
{
    /* The PID runs a process that started after the file last changed and holds
     * no lock: the writer is gone and its PID went to someone else. */
    pid_t other = live_child(NULL, false);
    char name[1024];
    snprintf(name, sizeof name, "%s", temp_name("m.gguf", other, "aB3xY9"));
    put(name, "partial");
    age(name);
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    ck_assert_int_eq(write_out(at("m.gguf"), &p, "new\n"), SLM_OK);
    ck_assert_int_eq(access(name, F_OK), -1);
    stop(other);
}
END_TEST

START_TEST(writer_between_create_and_lock_is_kept)
{
    /* A fresh, unlocked temporary of a running process that started before it:
     * a writer that has not locked it yet. */
    pid_t w = live_child(NULL, false);
    sleep(1);
    char name[1024];
    snprintf(name, sizeof name, "%s", temp_name("m.gguf", w, "aB3xY9"));
    put(name, "");
    slm_output_params_t p = params(SLM_OUTPUT_FILE);
    ck_assert_int_eq(write_out(at("m.gguf"), &p, "new\n"), SLM_OK);
    ck_assert_int_eq(access(name, F_OK), 0);
    stop(w);
}
END_TEST

/* ---- item 4: signals ---- */

START_TEST(signal_cleanup_removes_files_and_folders)
{
    slm_output_params_t pf = params(SLM_OUTPUT_FILE), pd = params(SLM_OUTPUT_FOLDER);
    slm_output_t *a, *b;
    ck_assert_int_eq(slm_output_prepare(at("a.gguf"), &pf, &a, &err), SLM_OK);
    ck_assert_int_eq(slm_output_prepare(at("hf"), &pd, &b, &err), SLM_OK);
    put(slm_output_path(a), "partial");
    char f[PATH_MAX];
    for (int i = 0; i < 300; i++) {   /* more entries than one getdents64 buffer */
        snprintf(f, sizeof f, "%s/file-%03d-with-a-long-name-to-fill-the-buffer.json",
                 slm_output_path(b), i);
        put(f, "x");
    }
    slm_output_signal_cleanup();
    ck_assert_str_eq(listing(dir), "");
    slm_output_abort(a);
    slm_output_abort(b);
}
END_TEST

/* ---- model files: the container's own file, and version-1 plugins ---- */

static slm_registry_t *open_registry(void)
{
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg != NULL, "%s", err.message);
    return reg;
}

static slm_model_file_t *tiny_model(void)
{
    slm_model_file_t *mf = slm_model_file_new();
    static const float w[4] = {1, 2, 3, 4};
    const int64_t ne[1] = {4};
    ck_assert_int_eq(slm_model_file_set_string(mf, "general.name", "tiny", NULL), SLM_OK);
    ck_assert_int_eq(slm_model_file_add_tensor(mf, "w", SLM_TYPE_F32, 1, ne, w, sizeof w, SLM_MF_COPY,
                                               NULL), SLM_OK);
    return mf;
}

START_TEST(model_file_is_not_saved_over_its_own_file)
{
    slm_registry_t *reg = open_registry();
    slm_model_file_t *mf = tiny_model();
    ck_assert_msg(slm_model_file_save(mf, reg, at("in.gguf"), NULL, &err) == SLM_OK, "%s", err.message);
    slm_model_file_free(mf);
    ck_assert_int_eq(link(at("in.gguf"), at("hard.gguf")), 0);
    ck_assert_int_eq(symlink("in.gguf", at("soft.gguf")), 0);
    ck_assert_int_eq(slm_model_file_open(reg, at("in.gguf"), NULL, &mf, &err), SLM_OK);
    const char *outs[] = {at("in.gguf"), at("hard.gguf"), at("soft.gguf")};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(slm_model_file_save(mf, reg, outs[i], NULL, &err), SLM_E_INVALID);
        ck_assert_msg(strstr(err.message, "refusing to overwrite the input"), "%s", err.message);
    }
    ck_assert_msg(slm_model_file_save(mf, reg, at("copy.gguf"), NULL, &err) == SLM_OK, "%s",
                  err.message);
    slm_model_file_free(mf);
    slm_registry_free(reg);
}
END_TEST

static void fake_manifest(const char *folder)
{
    const char *top = getenv("top_builddir");
    ck_assert_msg(top != NULL, "top_builddir is not set (run through make check)");
    char path[PATH_MAX], text[PATH_MAX + 512];
    snprintf(text, sizeof text,
             "{\"file_format_version\": \"1.0.0\", \"name\": \"fake-format-v1\", \"kind\": \"format\","
             " \"version\": \"1.0.0\", \"abi_version\": 1,"
             " \"library_path\": \"%s/tests/output/.libs/fake-format-v1.so\","
             " \"description\": \"a version-1 format plugin\","
             " \"provides\": {\"extensions\": [\".fake\"], \"read\": false, \"write\": true}}\n", top);
    snprintf(path, sizeof path, "%s/fake-format-v1.json", folder);
    put(path, text);
}

START_TEST(version_1_writer_gets_the_host_checks)
{
    ck_assert_int_eq(mkdir(at("plugins"), 0755), 0);
    fake_manifest(at("plugins"));
    slm_registry_options_t opts = {.struct_size = sizeof opts, .search_path = at("plugins")};
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(&opts, &err);
    ck_assert_msg(reg != NULL, "%s", err.message);
    slm_model_file_t *mf = tiny_model();
    /* It still writes ... */
    ck_assert_msg(slm_model_file_save(mf, reg, at("a.fake"), NULL, &err) == SLM_OK, "%s", err.message);
    ck_assert_str_eq(get(at("a.fake")), "written by fake-format-v1\n");
    /* ... a link's target, keeping the link ... */
    ck_assert_int_eq(symlink("t.fake", at("l.fake")), 0);
    ck_assert_msg(slm_model_file_save(mf, reg, at("l.fake"), NULL, &err) == SLM_OK, "%s", err.message);
    struct stat st;
    ck_assert(lstat(at("l.fake"), &st) == 0 && S_ISLNK(st.st_mode));
    ck_assert_str_eq(get(at("t.fake")), "written by fake-format-v1\n");
    /* ... and never over a FIFO. */
    ck_assert_int_eq(mkfifo(at("p.fake"), 0644), 0);
    ck_assert_int_eq(slm_model_file_save(mf, reg, at("p.fake"), NULL, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "is a FIFO"), "%s", err.message);
    ck_assert(lstat(at("p.fake"), &st) == 0 && S_ISFIFO(st.st_mode));
    slm_model_file_free(mf);
    slm_registry_free(reg);
}
END_TEST

/* ---- item 5: inputs ---- */

START_TEST(inputs_are_regular_files_only)
{
    ck_assert_int_eq(mkfifo(at("pipe"), 0644), 0);
    ck_assert_int_eq(mkdir(at("folder"), 0755), 0);
    put(at("text"), "hello");
    char *buf;
    size_t len;
    slm_error_init(&err);
    alarm(10);   /* the old reader blocked here for ever */
    ck_assert_int_eq(slm_input_read_all(at("pipe"), 1 << 20, &buf, &len, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "pipe: is a FIFO, not a regular file"), "%s", err.message);
    ck_assert_int_eq(slm_input_read_all(at("folder"), 1 << 20, &buf, &len, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "folder: is a directory, not a regular file"), "%s", err.message);
    ck_assert_int_eq(slm_input_read_all(at("none"), 1 << 20, &buf, &len, &err), SLM_E_NOT_FOUND);
    ck_assert_int_eq(slm_input_read_all(at("text"), 4, &buf, &len, &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_input_read_all(at("text"), 1 << 20, &buf, &len, &err), SLM_OK);
    ck_assert_str_eq(buf, "hello");
    ck_assert_uint_eq(len, 5);
    free(buf);
    int fd;
    ck_assert_int_eq(slm_input_open(at("folder"), SLM_INPUT_FOLDER_OK, &fd, &err), SLM_OK);
    close(fd);
    slm_registry_t *reg = open_registry();
    slm_model_file_t *mf = NULL;
    ck_assert_int_eq(slm_model_file_open(reg, at("pipe"), NULL, &mf, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "is a FIFO"), "%s", err.message);
    ck_assert_int_eq(slm_model_file_open(reg, at("pipe"), "format-gguf", &mf, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "is a FIFO"), "%s", err.message);
    ck_assert_int_eq(slm_model_file_open(reg, at("pipe"), "format-safetensors", &mf, &err),
                     SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "is a FIFO"), "%s", err.message);
    alarm(0);
    slm_registry_free(reg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("output");
    TCase *tc = tcase_create("out");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, file_is_written_and_nothing_is_left);
    tcase_add_test(tc, temporary_name_holds_the_pid);
    tcase_add_test(tc, refuses_a_fifo);
    tcase_add_test(tc, refuses_a_socket);
    tcase_add_test(tc, refuses_a_directory_for_a_file);
    tcase_add_test(tc, refuses_a_device_node);
    tcase_add_test(tc, symlink_is_kept_and_its_target_replaced);
    tcase_add_test(tc, dangling_symlink_target_is_created);
    tcase_add_test(tc, symlink_to_a_fifo_is_refused);
    tcase_add_test(tc, replaced_file_keeps_its_mode);
    tcase_add_test(tc, refuses_an_input_by_any_name);
    tcase_add_test(tc, folder_replaces_an_earlier_output);
    tcase_add_test(tc, folder_with_foreign_files_is_kept);
    tcase_add_test(tc, folder_holding_an_input_is_kept);
    tcase_add_test(tc, folder_output_over_a_file_is_refused);
    tcase_add_test(tc, dead_writers_temporaries_are_removed);
    tcase_add_test(tc, leftover_with_our_own_pid_is_removed);
    tcase_add_test(tc, live_writers_temporary_is_kept);
    tcase_add_test(tc, reused_pid_does_not_keep_a_temporary);
    tcase_add_test(tc, writer_between_create_and_lock_is_kept);
    tcase_add_test(tc, signal_cleanup_removes_files_and_folders);
    tcase_add_test(tc, model_file_is_not_saved_over_its_own_file);
    tcase_add_test(tc, version_1_writer_gets_the_host_checks);
    tcase_add_test(tc, inputs_are_regular_files_only);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
