/* Giving back the pages of copied weights (core/util/host-pages.c, D60): a read-only
 * file mapping's pages leave the process's resident memory and read back the same;
 * memory whose pages would be lost (anonymous, heap, pages copied on write) is never
 * touched. Links the core's source directly: the helper is internal. */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal/host-pages.h"

#define PAGES 64

static long page;

/* Resident kB of the mapping holding p, from /proc/self/smaps (-1: not found). */
static long rss_kb(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    ck_assert(f != NULL);
    char line[512];
    long rss = -1;
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, kb;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3)   /* a mapping's first line */
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (in && sscanf(line, "Rss: %lu kB", &kb) == 1)
            rss = (long)kb;
    }
    fclose(f);
    return rss;
}

/* A file of PAGES pages, byte i = i * 7, mapped as asked. */
static unsigned char *map_file(int prot, char *path)
{
    strcpy(path, "/tmp/slmops-host-pages-XXXXXX");
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    size_t n = (size_t)PAGES * (size_t)page;
    unsigned char *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 7);
    ck_assert(write(fd, buf, n) == (ssize_t)n);
    free(buf);
    unsigned char *m = mmap(NULL, n, prot, MAP_PRIVATE, fd, 0);
    ck_assert(m != MAP_FAILED);
    close(fd);
    return m;
}

static void expect_pattern(const unsigned char *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (m[i] != (unsigned char)(i * 7))
            ck_abort_msg("byte %zu is %u, not %u", i, m[i], (unsigned)(unsigned char)(i * 7));
}

static uint64_t drop(const void *p, size_t n)
{
    slm__host_pages_t *hp = slm__host_pages_open();
    ck_assert_msg(hp != NULL, "/proc/self/smaps could not be read");
    slm__host_range_t r = {p, n};
    uint64_t d = slm__host_pages_drop(hp, &r, 1);
    slm__host_pages_close(hp);
    return d;
}

START_TEST(read_only_file_pages_are_given_back)
{
    char path[64];
    size_t n = (size_t)PAGES * (size_t)page;
    unsigned char *m = map_file(PROT_READ, path);
    expect_pattern(m, n);   /* every page resident */
    ck_assert_int_ge(rss_kb(m), (long)(n / 1024));
    /* A range from mid-page to mid-page: only the whole pages inside go. */
    ck_assert_uint_eq(drop(m + page / 2, n - page), n - 2 * (size_t)page);
    ck_assert_int_le(rss_kb(m), 2 * page / 1024);
    expect_pattern(m, n);   /* read back from the file, unchanged */
    /* Two ranges that touch: the page they share goes too. */
    slm__host_pages_t *hp = slm__host_pages_open();
    slm__host_range_t r[2] = {{m + n / 2, n / 2}, {m, n / 2 + 1}};
    ck_assert_uint_eq(slm__host_pages_drop(hp, r, 2), n);
    slm__host_pages_close(hp);
    ck_assert_int_eq(rss_kb(m), 0);
    expect_pattern(m, n);
    munmap(m, n);
    unlink(path);
}
END_TEST

START_TEST(memory_that_would_be_lost_is_kept)
{
    size_t n = (size_t)PAGES * (size_t)page;
    /* Anonymous, made read-only after it was written. */
    unsigned char *a = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(a != MAP_FAILED);
    for (size_t i = 0; i < n; i++)
        a[i] = (unsigned char)(i * 7);
    ck_assert_int_eq(mprotect(a, n, PROT_READ), 0);
    ck_assert_uint_eq(drop(a, n), 0);
    expect_pattern(a, n);
    munmap(a, n);
    /* The heap. */
    unsigned char *h = malloc(n);
    for (size_t i = 0; i < n; i++)
        h[i] = (unsigned char)(i * 7);
    ck_assert_uint_eq(drop(h, n), 0);
    expect_pattern(h, n);
    free(h);
    /* A private file mapping one page of which was written (copied on write), then
     * made read-only: that page exists nowhere else. */
    char path[64];
    unsigned char *m = map_file(PROT_READ | PROT_WRITE, path);
    m[5 * page] = 1;
    ck_assert_int_eq(mprotect(m, n, PROT_READ), 0);
    ck_assert_uint_eq(drop(m, n), 0);
    ck_assert_uint_eq(m[5 * page], 1);
    ck_assert_int_eq(mprotect(m, n, PROT_READ | PROT_WRITE), 0);
    m[5 * page] = (unsigned char)(5 * page * 7);   /* the file's byte, for the check */
    expect_pattern(m, n);
    munmap(m, n);
    unlink(path);
}
END_TEST

int main(void)
{
    page = sysconf(_SC_PAGESIZE);
    Suite *s = suite_create("host-pages");
    TCase *tc = tcase_create("host-pages");
    tcase_add_test(tc, read_only_file_pages_are_given_back);
    tcase_add_test(tc, memory_that_would_be_lost_is_kept);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
