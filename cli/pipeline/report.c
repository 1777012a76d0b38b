/* The pipeline's report: report.json (every model's figures, the loss curves, the
 * teacher-versus-student summary) and a self-contained report.html (inline CSS and SVG). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/version.h>

#include "cli/common.h"
#include "cli/pipeline/pipeline.h"

/* ---- report.json ---- */

/* One row per model label, in the order the eval and bench stages name them. */
static json_t *models_of(const json_t *stage_results, json_t *rows, json_t *order)
{
    const char *label;
    json_t *m;
    json_object_foreach(json_object_get(stage_results, "models"), label, m) {
        json_t *row = json_object_get(rows, label);
        if (!row) {
            row = json_pack("{s:s}", "label", label);
            json_object_set_new(rows, label, row);
            json_array_append_new(order, json_string(label));
        }
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v)
            if (!json_is_null(v))
                json_object_set(row, k, v);
    }
    return rows;
}

/* [[step, value], ...] of key in a train job's JSON log. */
static void read_curve(const char *log, json_t *train, json_t *val)
{
    FILE *f = log ? fopen(log, "r") : NULL;
    char *line = NULL;
    size_t cap = 0;
    while (f && getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        json_t *step = json_object_get(o, "step");
        if (json_is_integer(step) && json_is_number(json_object_get(o, "loss")))
            json_array_append_new(train, json_pack("[O, O]", step, json_object_get(o, "loss")));
        if (json_is_integer(step) && json_is_number(json_object_get(o, "val_loss")))
            json_array_append_new(val, json_pack("[O, O]", step, json_object_get(o, "val_loss")));
        json_decref(o);
    }
    free(line);
    if (f)
        fclose(f);
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *pct(double v)
{
    return isfinite(v) ? json_real(round(v * 10) / 10) : json_null();
}

static json_t *summary(const json_t *recipe, const json_t *rows)
{
    const json_t *cmp = json_object_get(recipe, "compare");
    const char *t = cmp ? json_string_value(json_object_get(cmp, "teacher")) : "teacher";
    const char *s = cmp ? json_string_value(json_object_get(cmp, "student")) : "student";
    const json_t *T = json_object_get(rows, t), *S = json_object_get(rows, s);
    if (!T || !S)
        return json_null();
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "teacher", t, "student", s,
                     "accuracy_retained_pct", pct(100 * num(S, "accuracy") / num(T, "accuracy")),
                     "decode_time_saved_pct",
                     pct(100 * (1 - num(T, "decode_tps") / num(S, "decode_tps"))),
                     "memory_saved_pct",
                     pct(100 * (1 - num(S, "peak_rss_bytes") / num(T, "peak_rss_bytes"))),
                     "size_saved_pct", pct(100 * (1 - num(S, "file_bytes") / num(T, "file_bytes"))),
                     "params_ratio_pct", pct(100 * num(S, "n_params") / num(T, "n_params")));
}

/* Largest first (parameters, then file size): the teacher, its students, their
 * quantized variants. */
static void sort_models(json_t *models)
{
    size_t n = json_array_size(models);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            const json_t *a = json_array_get(models, j - 1), *b = json_array_get(models, j);
            double pa = num(a, "n_params"), pb = num(b, "n_params");
            double fa = num(a, "file_bytes"), fb = num(b, "file_bytes");
            bool swap = (isfinite(pb) && (!isfinite(pa) || pb > pa)) ||
                        (pa == pb && isfinite(fb) && (!isfinite(fa) || fb > fa));
            if (!swap)
                break;
            json_t *t = json_incref(json_array_get(models, j - 1));
            json_array_set(models, j - 1, json_array_get(models, j));
            json_array_set_new(models, j, t);
        }
}

static json_t *build(slm_pipe_t *p)
{
    json_t *rows = json_object(), *order = json_array(), *curves = json_array();
    json_t *stages = json_array();
    const json_t *rs = json_object_get(p->recipe, "stages");
    json_t *state = json_object_get(p->state, "stages");
    for (size_t i = 0; i < json_array_size(rs); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(rs, i), "name"));
        const json_t *st = json_object_get(state, name);
        const char *type = json_string_value(json_object_get(st, "type"));
        const json_t *res = json_object_get(st, "results");
        json_array_append_new(stages, json_pack("{s:s, s:s?, s:O?, s:O?}", "name", name, "type",
                                                type, "status", json_object_get(st, "status"),
                                                "seconds", json_object_get(st, "seconds")));
        if (type && (strcmp(type, "eval") == 0 || strcmp(type, "bench") == 0))
            models_of(res, rows, order);
        const char *log = json_string_value(json_object_get(json_object_get(st, "outputs"), "log"));
        if (log) {
            json_t *tr = json_array(), *va = json_array();
            read_curve(log, tr, va);
            json_array_append_new(curves, json_pack("{s:s, s:o, s:o}", "stage", name, "train",
                                                    tr, "val", va));
        }
    }
    json_t *models = json_array();
    for (size_t i = 0; i < json_array_size(order); i++)
        json_array_append(models, json_object_get(rows, json_string_value(json_array_get(order, i))));
    sort_models(models);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "recipe",
                            json_string_value(json_object_get(p->recipe, "name")),
                            "description",
                            json_string_value(json_object_get(p->recipe, "description")) ?: "",
                            "slmops", slm_version(), "stages", stages, "curves", curves,
                            "models", models, "summary", summary(p->recipe, rows));
    json_decref(rows);
    json_decref(order);
    return doc;
}

/* ---- report.html ---- */

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *const colors[] = {"#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626",
                                     "#0891b2", "#ca8a04", "#4b5563"};

typedef struct frame {
    double x0, x1, y0, y1;     /* data range */
    double L, T, W, H;         /* plot area in pixels */
} frame_t;

static double fx(const frame_t *f, double x)
{
    return f->L + (f->x1 > f->x0 ? (x - f->x0) / (f->x1 - f->x0) : 0.5) * f->W;
}

static double fy(const frame_t *f, double y)
{
    return f->T + f->H - (f->y1 > f->y0 ? (y - f->y0) / (f->y1 - f->y0) : 0.5) * f->H;
}

static void axes(FILE *o, const frame_t *f, const char *xlabel, const char *ylabel)
{
    fprintf(o, "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='#f8fafc' "
            "stroke='#94a3b8'/>\n", f->L, f->T, f->W, f->H);
    for (int i = 0; i <= 4; i++) {
        double y = f->y0 + (f->y1 - f->y0) * i / 4, x = f->x0 + (f->x1 - f->x0) * i / 4;
        fprintf(o, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='#e2e8f0'/>"
                "<text x='%.1f' y='%.1f' class='tick' text-anchor='end'>%.3g</text>"
                "<text x='%.1f' y='%.1f' class='tick' text-anchor='middle'>%.3g</text>\n",
                f->L, f->L + f->W, fy(f, y), fy(f, y), f->L - 4, fy(f, y) + 4, y, fx(f, x),
                f->T + f->H + 14, x);
    }
    fprintf(o, "<text x='%.0f' y='%.0f' class='axis' text-anchor='middle'>", f->L + f->W / 2,
            f->T + f->H + 32);
    esc(o, xlabel);
    fprintf(o, "</text><text transform='translate(14 %.0f) rotate(-90)' class='axis' "
            "text-anchor='middle'>", f->T + f->H / 2);
    esc(o, ylabel);
    fputs("</text>\n", o);
}

static void range(const json_t *pts, int axis, double *lo, double *hi)
{
    for (size_t i = 0; i < json_array_size(pts); i++) {
        double v = json_number_value(json_array_get(json_array_get(pts, i), (size_t)axis));
        if (v < *lo)
            *lo = v;
        if (v > *hi)
            *hi = v;
    }
}

static void polyline(FILE *o, const frame_t *f, const json_t *pts, const char *color)
{
    fprintf(o, "<polyline fill='none' stroke='%s' stroke-width='2' points='", color);
    for (size_t i = 0; i < json_array_size(pts); i++) {
        const json_t *pt = json_array_get(pts, i);
        fprintf(o, "%.1f,%.1f ", fx(f, json_number_value(json_array_get(pt, 0))),
                fy(f, json_number_value(json_array_get(pt, 1))));
    }
    fputs("'/>\n", o);
    for (size_t i = 0; i < json_array_size(pts); i++) {
        const json_t *pt = json_array_get(pts, i);
        fprintf(o, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='%s'/>",
                fx(f, json_number_value(json_array_get(pt, 0))),
                fy(f, json_number_value(json_array_get(pt, 1))), color);
    }
    fputc('\n', o);
}

static void curve_chart(FILE *o, const json_t *c)
{
    const json_t *tr = json_object_get(c, "train"), *va = json_object_get(c, "val");
    frame_t f = {INFINITY, -INFINITY, INFINITY, -INFINITY, 56, 16, 400, 200};
    range(tr, 0, &f.x0, &f.x1);
    range(va, 0, &f.x0, &f.x1);
    range(tr, 1, &f.y0, &f.y1);
    range(va, 1, &f.y0, &f.y1);
    if (!isfinite(f.x0))
        return;
    fputs("<figure class='chart'><figcaption>Stage <b>", o);
    esc(o, json_string_value(json_object_get(c, "stage")));
    fputs("</b>: loss per step</figcaption>\n<svg class='curve' width='480' height='260' "
          "viewBox='0 0 480 260' xmlns='http://www.w3.org/2000/svg'>\n", o);
    axes(o, &f, "optimizer step", "loss (nats/token)");
    polyline(o, &f, tr, colors[0]);
    polyline(o, &f, va, colors[1]);
    fprintf(o, "<text x='%.0f' y='30' class='legend' fill='%s'>training</text>"
            "<text x='%.0f' y='46' class='legend' fill='%s'>validation</text>\n</svg></figure>\n",
            f.L + f.W - 80, colors[0], f.L + f.W - 80, colors[1]);
}

/* Size against quality: file size (MiB) on x, task accuracy (or perplexity) on y. */
static void size_chart(FILE *o, const json_t *models)
{
    const char *q = "accuracy", *qname = "task accuracy";
    bool any = false;
    for (size_t i = 0; i < json_array_size(models); i++)
        any |= json_is_number(json_object_get(json_array_get(models, i), "accuracy"));
    if (!any)
        q = "ppl", qname = "perplexity (lower is better)";
    frame_t f = {0, -INFINITY, INFINITY, -INFINITY, 56, 16, 520, 240};
    json_t *pts = json_array();
    for (size_t i = 0; i < json_array_size(models); i++) {
        const json_t *m = json_array_get(models, i);
        if (json_is_number(json_object_get(m, "file_bytes")) &&
            json_is_number(json_object_get(m, q)))
            json_array_append_new(pts, json_pack("[f, f, s]", num(m, "file_bytes") / 1048576.0,
                                                 num(m, q), json_string_value(json_object_get(
                                                                m, "label"))));
    }
    range(pts, 0, &f.x0, &f.x1);
    range(pts, 1, &f.y0, &f.y1);
    if (json_array_size(pts) == 0) {
        json_decref(pts);
        return;
    }
    f.x1 *= 1.1;
    if (strcmp(q, "accuracy") == 0)
        f.y0 = 0, f.y1 = f.y1 < 1 ? 1 : f.y1;
    else
        f.y0 *= 0.9, f.y1 *= 1.1;
    fputs("<figure class='chart'><figcaption>Size against quality</figcaption>\n"
          "<svg id='size-quality' width='600' height='300' viewBox='0 0 600 300' "
          "xmlns='http://www.w3.org/2000/svg'>\n", o);
    axes(o, &f, "model file (MiB)", qname);
    for (size_t i = 0; i < json_array_size(pts); i++) {
        const json_t *pt = json_array_get(pts, i);
        double x = fx(&f, json_number_value(json_array_get(pt, 0)));
        double y = fy(&f, json_number_value(json_array_get(pt, 1)));
        fprintf(o, "<circle cx='%.1f' cy='%.1f' r='6' fill='%s'/><text x='%.1f' y='%.1f' "
                "class='legend'>", x, y, colors[i % 8], x + 9, i % 2 ? y + 18 : y - 6);
        esc(o, json_string_value(json_array_get(pt, 2)));
        fputs("</text>\n", o);
    }
    fputs("</svg></figure>\n", o);
    json_decref(pts);
}

static void cell(FILE *o, const json_t *m, const char *key, double scale, const char *fmt)
{
    double v = num(m, key);
    fputs("<td>", o);
    if (isfinite(v))
        fprintf(o, fmt, v * scale);
    else
        fputs("&ndash;", o);
    fputs("</td>", o);
}

static void table(FILE *o, const json_t *models)
{
    fputs("<table id='models'><thead><tr><th>model</th><th>parameters</th><th>file (MiB)</th>"
          "<th>peak RSS generating (MiB)</th><th>prefill tok/s</th><th>decode tok/s</th>"
          "<th>perplexity</th><th>task accuracy</th></tr></thead><tbody>\n", o);
    for (size_t i = 0; i < json_array_size(models); i++) {
        const json_t *m = json_array_get(models, i);
        fputs("<tr><th>", o);
        esc(o, json_string_value(json_object_get(m, "label")));
        fputs("</th>", o);
        cell(o, m, "n_params", 1, "%.0f");
        cell(o, m, "file_bytes", 1 / 1048576.0, "%.2f");
        cell(o, m, "peak_rss_bytes", 1 / 1048576.0, "%.1f");
        cell(o, m, "prefill_tps", 1, "%.1f");
        cell(o, m, "decode_tps", 1, "%.1f");
        cell(o, m, "ppl", 1, "%.3f");
        cell(o, m, "accuracy", 100, "%.1f%%");
        fputs("</tr>\n", o);
    }
    fputs("</tbody></table>\n", o);
}

static void summary_html(FILE *o, const json_t *s)
{
    if (!json_is_object(s)) {
        fputs("<p class='note'>No teacher-versus-student summary: the recipe's eval and bench "
              "stages name no models labelled as <code>compare</code> says.</p>\n", o);
        return;
    }
    fputs("<div id='summary'>", o);
    static const char *const keys[][2] = {{"accuracy_retained_pct", "accuracy retained"},
                                          {"decode_time_saved_pct", "decode time saved"},
                                          {"memory_saved_pct", "memory saved"},
                                          {"size_saved_pct", "file size saved"}};
    for (size_t i = 0; i < 4; i++) {
        fputs("<div class='card'><div class='big'>", o);
        double v = num(s, keys[i][0]);
        if (isfinite(v))
            fprintf(o, "%.1f%%", v);
        else
            fputs("&ndash;", o);
        fprintf(o, "</div>%s</div>", keys[i][1]);
    }
    fputs("</div>\n<p class='note'>", o);
    esc(o, json_string_value(json_object_get(s, "student")));
    fputs(" against ", o);
    esc(o, json_string_value(json_object_get(s, "teacher")));
    fputs(": accuracy on the task, decode time per token, peak resident memory while "
          "generating (a fresh process per model).</p>\n", o);
}

static const char css[] =
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#0f172a;background:#fff}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}"
    "table{border-collapse:collapse}th,td{border:1px solid #cbd5e1;padding:4px 8px;"
    "text-align:right}thead th{background:#e2e8f0}tbody th{text-align:left}"
    ".chart{display:inline-block;margin:0 16px 16px 0}.tick{font-size:10px;fill:#475569}"
    ".axis{font-size:11px;fill:#0f172a}.legend{font-size:12px}"
    "#summary{display:flex;gap:12px}.card{border:1px solid #cbd5e1;border-radius:6px;"
    "padding:8px 14px;min-width:120px}.big{font-size:24px;font-weight:600;color:#1d4ed8}"
    ".note{color:#475569}";

static char *html(const json_t *doc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o)
        return NULL;
    fputs("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>slmops "
          "pipeline: ", o);
    esc(o, json_string_value(json_object_get(doc, "recipe")));
    fprintf(o, "</title><style>%s</style></head><body>\n<h1>Pipeline ", css);
    esc(o, json_string_value(json_object_get(doc, "recipe")));
    fputs("</h1><p class='note'>", o);
    esc(o, json_string_value(json_object_get(doc, "description")));
    fprintf(o, " (slmops %s)</p>\n<h2>Teacher and student</h2>\n",
            json_string_value(json_object_get(doc, "slmops")));
    summary_html(o, json_object_get(doc, "summary"));
    fputs("<h2>Models</h2>\n", o);
    table(o, json_object_get(doc, "models"));
    size_chart(o, json_object_get(doc, "models"));
    const json_t *curves = json_object_get(doc, "curves");
    if (json_array_size(curves))
        fputs("<h2>Training</h2>\n", o);
    for (size_t i = 0; i < json_array_size(curves); i++)
        curve_chart(o, json_array_get(curves, i));
    fputs("<h2>Stages</h2>\n<table id='stages'><thead><tr><th>stage</th><th>type</th>"
          "<th>seconds (last run)</th></tr></thead><tbody>\n", o);
    const json_t *st = json_object_get(doc, "stages");
    for (size_t i = 0; i < json_array_size(st); i++) {
        const json_t *s = json_array_get(st, i);
        fputs("<tr><th>", o);
        esc(o, json_string_value(json_object_get(s, "name")));
        fputs("</th><td>", o);
        esc(o, json_string_value(json_object_get(s, "type")));
        fputs("</td>", o);
        cell(o, s, "seconds", 1, "%.1f");
        fputs("</tr>\n", o);
    }
    fputs("</tbody></table>\n</body></html>\n", o);
    fclose(o);
    return buf;
}

/* Write path unless it already holds exactly text: a finished recipe run again
 * writes nothing. */
static int write_if_changed(slm_pipe_t *p, const char *name, const char *text)
{
    size_t n = strlen(p->work) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path)
        return SLM_CLI_FAILED;
    snprintf(path, n, "%s/%s", p->work, name);
    size_t len = strlen(text), have = 0;
    FILE *f = fopen(path, "rb");
    char *old = f ? malloc(len + 1) : NULL;
    if (old)
        have = fread(old, 1, len + 1, f);
    if (f)
        fclose(f);
    bool same = old && have == len && memcmp(old, text, len) == 0;
    free(old);
    int rc = same ? SLM_CLI_OK : slm_pipe_write_text(p, path, text, len);
    free(path);
    return rc;
}

int slm_pipe_report(slm_pipe_t *p)
{
    json_t *doc = build(p);
    char *text = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    char *page = doc ? html(doc) : NULL;
    int rc = text && page ? SLM_CLI_OK : SLM_CLI_FAILED;
    if (rc == SLM_CLI_OK) {
        size_t n = strlen(text);
        text = realloc(text, n + 2);
        strcpy(text + n, "\n");
        rc = write_if_changed(p, "report.json", text);
    }
    if (rc == SLM_CLI_OK)
        rc = write_if_changed(p, "report.html", page);
    free(text);
    free(page);
    json_decref(doc);
    return rc;
}

/* ---- the package's model card ---- */

static void md_cell(FILE *o, double v, const char *fmt)
{
    fputc(' ', o);
    if (isfinite(v))
        fprintf(o, fmt, v);
    else
        fputs("-", o);
    fputs(" |", o);
}

char *slm_pipe_card(slm_pipe_t *p, const json_t *stage, const char *model_name,
                    const json_t *reports)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o)
        return NULL;
    const char *title = json_string_value(json_object_get(stage, "title"));
    const char *about = json_string_value(json_object_get(stage, "description"));
    const char *license = json_string_value(json_object_get(stage, "license"));
    fprintf(o, "---\nlicense: %s\nlibrary_name: slmops\n---\n\n# %s\n\n",
            license ? license : "other",
            title ? title : json_string_value(json_object_get(p->recipe, "name")));
    if (about)
        fprintf(o, "%s\n\n", about);
    fprintf(o, "Made by `slmops pipeline` (slmops %s) from the recipe `%s`.\n\n## Files\n\n"
            "- `%s`: the model\n", slm_version(),
            json_string_value(json_object_get(p->recipe, "name")), model_name);
    const json_t *a = json_object_get(stage, "adapters");
    for (size_t i = 0; i < json_array_size(a); i++)
        fprintf(o, "- `adapter-%zu-%s`: a LoRA adapter (`--lora`)\n", i,
                strrchr(json_string_value(json_array_get(a, i)), '/') ?
                    strrchr(json_string_value(json_array_get(a, i)), '/') + 1 :
                    json_string_value(json_array_get(a, i)));
    fprintf(o, "- `chat_template.jinja`: the chat template, when the model has one\n\n"
            "## Use\n\n```sh\nslmops generate -m %s -p \"Once upon a time\"\nslmops chat -m %s"
            "\n```\n", model_name, model_name);
    json_t *rows = json_object(), *order = json_array();
    for (size_t i = 0; i < json_array_size(reports); i++)
        models_of(json_array_get(reports, i), rows, order);
    json_t *sorted = json_array();
    for (size_t i = 0; i < json_array_size(order); i++)
        json_array_append(sorted, json_object_get(rows, json_string_value(json_array_get(order, i))));
    sort_models(sorted);
    if (json_array_size(sorted)) {
        fputs("\n## Measured\n\n| model | parameters | file (MiB) | peak RSS (MiB) | prefill "
              "tok/s | decode tok/s | perplexity | task accuracy |\n|---|---|---|---|---|---|---|"
              "---|\n", o);
        for (size_t i = 0; i < json_array_size(sorted); i++) {
            const json_t *m = json_array_get(sorted, i);
            const char *label = json_string_value(json_object_get(m, "label"));
            fprintf(o, "| %s |", label);
            md_cell(o, num(m, "n_params"), "%.0f");
            md_cell(o, num(m, "file_bytes") / 1048576.0, "%.2f");
            md_cell(o, num(m, "peak_rss_bytes") / 1048576.0, "%.1f");
            md_cell(o, num(m, "prefill_tps"), "%.1f");
            md_cell(o, num(m, "decode_tps"), "%.1f");
            md_cell(o, num(m, "ppl"), "%.3f");
            md_cell(o, 100 * num(m, "accuracy"), "%.1f%%");
            fputc('\n', o);
        }
    }
    json_decref(sorted);
    json_decref(rows);
    json_decref(order);
    fclose(o);
    return buf;
}
