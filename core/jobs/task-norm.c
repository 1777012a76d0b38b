/* Answer normalization for exact match and "contains" (slmops/task.h says the rules),
 * and the Wilson score interval the task accuracy is reported with. */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/task.h>

#include "internal/util.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_punct(char c)
{
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
           (c >= '{' && c <= '~');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Whether w[0..n) is a number: [+-]digits(,ddd)*(.digits*)? or [+-].digits. Commas must
 * separate groups of three. */
static bool is_number(const char *w, size_t n)
{
    size_t i = 0, digits = 0;
    if (i < n && (w[i] == '+' || w[i] == '-'))
        i++;
    size_t group = 0;
    bool commas = false;
    for (; i < n && (is_digit(w[i]) || w[i] == ','); i++) {
        if (w[i] == ',') {
            if (group == 0 || (commas && group != 3) || (!commas && group > 3))
                return false;
            commas = true;
            group = 0;
            continue;
        }
        group++;
        digits++;
    }
    if (commas && group != 3)
        return false;
    if (i < n && w[i] == '.') {
        for (i++; i < n && is_digit(w[i]); i++)
            digits++;
    }
    return i == n && digits > 0;
}

/* Whether a sign or decimal point at p starts a number ("-5", ".5", "+.5"): such
 * punctuation is not stripped from the front. */
static bool number_starts(const char *p, size_t n)
{
    size_t i = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    if (i < n && p[i] == '.')
        i++;
    return i > 0 && i < n && is_digit(p[i]);
}

/* The canonical text of a number word into out (never longer than the word). */
static size_t canonical(const char *w, size_t n, char *out)
{
    size_t i = 0, o = 0;
    bool neg = false;
    if (w[i] == '+' || w[i] == '-')
        neg = w[i++] == '-';
    if (neg)
        out[o++] = '-';
    size_t int_start = o;
    for (; i < n && w[i] != '.'; i++)
        if (w[i] != ',' && !(o == int_start && w[i] == '0'))
            out[o++] = w[i];
    if (o == int_start)
        out[o++] = '0';
    if (i < n && w[i] == '.') {
        size_t dot = o;
        out[o++] = '.';
        for (i++; i < n; i++)
            out[o++] = w[i];
        while (o > dot + 1 && out[o - 1] == '0')
            o--;
        if (o == dot + 1)
            o = dot;
    }
    if (neg && o == 2 && out[1] == '0')   /* "-0" */
        memmove(out, out + 1, o--);
    return o;
}

int slm_task_normalize(const char *text, size_t len, char **out, slm_error_t *err)
{
    char *buf = malloc(len + 1), *res = malloc(len + 1);
    if (!buf || !res) {
        free(buf);
        free(res);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "task: out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text ? text[i] : 0;
        if (is_space(c)) {
            if (n > 0 && buf[n - 1] != ' ')
                buf[n++] = ' ';
            continue;
        }
        buf[n++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    size_t a = 0, b = n;
    while (a < b && (is_punct(buf[a]) || buf[a] == ' ') && !number_starts(buf + a, b - a))
        a++;
    while (b > a && (is_punct(buf[b - 1]) || buf[b - 1] == ' '))
        b--;
    size_t o = 0;
    for (size_t i = a; i < b;) {
        size_t j = i;
        while (j < b && buf[j] != ' ')
            j++;
        if (is_number(buf + i, j - i))
            o += canonical(buf + i, j - i, res + o);
        else {
            memcpy(res + o, buf + i, j - i);
            o += j - i;
        }
        if (j < b)
            res[o++] = ' ';
        i = j + 1;
    }
    res[o] = '\0';
    free(buf);
    *out = res;
    return SLM_OK;
}

void slm_task_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi)
{
    if (n == 0 || k > n) {
        *lo = 0.0;
        *hi = 1.0;
        return;
    }
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double denom = 1.0 + z2 / nn;
    double centre = (p + z2 / (2.0 * nn)) / denom;
    double half = z / denom * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));
    *lo = centre - half < 0.0 ? 0.0 : centre - half;
    *hi = centre + half > 1.0 ? 1.0 : centre + half;
}
