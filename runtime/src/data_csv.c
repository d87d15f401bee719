/* Generic CSV data: a header row of column names (optionally in double quotes), then one row of
 * values per line. Inputs are the configured columns in the configured order; each task's target
 * is the column named by its bind; an optional integer group column drives the by-group split
 * and the windows (without it, windows run over the whole file). Rows become samples (one per
 * row, or windows) in data_common.c.
 *
 * Deliberately minimal dialect: comma separator, no quoted commas or multi-line cells, blank
 * lines skipped. Columns that are not used are not parsed, so they may hold text. Every bad row
 * is reported as "path:line: error: reason" and the load fails.
 */
#include "data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct CsvHeader {
    int n;
    char **names;
    int64_t line;
} CsvHeader;

static void header_free(CsvHeader *h) {
    for (int i = 0; i < h->n; i++) free(h->names[i]);
    free(h->names);
    memset(h, 0, sizeof *h);
}

static int header_find(const CsvHeader *h, const char *name) {
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->names[i], name) == 0) return i;
    return -1;
}

/* Reads the first non-blank line as the header; reports empty files and duplicate names. */
static int read_header(DataReader *r, CsvHeader *h) {
    int rc;
    while ((rc = data_read_line(r)) > 0 && data_is_blank(r->buf)) {
    }
    if (rc < 0) return -1;
    if (rc == 0) {
        data_error_at(r, r->line > 0 ? r->line : 1, "empty file: expected a header row");
        return -1;
    }
    h->line = r->line;
    int n = 1; /* counted first: splitting cuts the line in place */
    for (const char *p = r->buf; *p; p++) n += *p == ',';
    char **tok = malloc((size_t)n * sizeof *tok);
    h->names = calloc((size_t)n, sizeof *h->names);
    if (!tok || !h->names) {
        free(tok);
        fprintf(stderr, "%s: error: out of memory\n", r->path);
        return -1;
    }
    data_split_commas(r->buf, tok, n);
    h->n = n;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (!(h->names[i] = data_strdup(tok[i]))) {
            bad = 1;
            fprintf(stderr, "%s: error: out of memory\n", r->path);
            break;
        }
        if (tok[i][0] == '\0') {
            data_error_at(r, r->line, "column %d has an empty name", i + 1);
            bad = 1;
        } else if (header_find(h, tok[i]) < i) {
            data_error_at(r, r->line, "column '%s' appears twice in the header", tok[i]);
            bad = 1;
        }
    }
    free(tok);
    return bad ? -1 : 0;
}

/* Column index of a configured name, reported as "path:line: error: no column named ..." */
static int need_column(DataReader *r, const CsvHeader *h, const char *name, const char *role) {
    int c = name ? header_find(h, name) : -1;
    if (c < 0) data_error_at(r, h->line, "no column named '%s' (%s)", name ? name : "(none)", role);
    return c;
}

typedef struct CsvGrow {
    int64_t n, cap;
} CsvGrow;

static int grow(DataTable *t, CsvGrow *g) {
    if (g->n < g->cap) return 0;
    int64_t cap = g->cap * 2;
    double *x = realloc(t->x, (size_t)cap * (size_t)(t->n_inputs > 0 ? t->n_inputs : 1) * sizeof *x);
    if (!x) return -1;
    t->x = x;
    int32_t *gr = realloc(t->group, (size_t)cap * sizeof *gr);
    if (!gr) return -1;
    t->group = gr;
    int64_t *cy = realloc(t->cycle, (size_t)cap * sizeof *cy);
    if (!cy) return -1;
    t->cycle = cy;
    for (int k = 0; k < t->n_targets; k++) {
        float *y = realloc(t->y[k], (size_t)cap * sizeof *y);
        if (!y) return -1;
        t->y[k] = y;
    }
    g->cap = cap;
    return 0;
}

int data_csv_table(const MtlDataConfig *cfg, DataWhich which, const char *path, DataTable *t) {
    memset(t, 0, sizeof *t);
    if (which == DATA_WHICH_TRAIN) path = cfg->train_path;
    if (!path) {
        fprintf(stderr, "error: no CSV %s file given\n", which == DATA_WHICH_TRAIN ? "training" : "input");
        return -1;
    }
    if (cfg->n_input_columns <= 0 || !cfg->input_columns) {
        fprintf(stderr, "%s: error: no input columns configured\n", path);
        return -1;
    }
    FILE *f = data_fopen(path, "r");
    if (!f) return -1;
    DataReader r = {.f = f, .path = path};
    CsvHeader h = {0};
    int n_in = cfg->n_input_columns;
    int n_targets = which == DATA_WHICH_INPUTS ? 0 : cfg->n_targets;
    int *in_col = malloc((size_t)n_in * sizeof *in_col);
    int *tg_col = malloc((size_t)(n_targets > 0 ? n_targets : 1) * sizeof *tg_col);
    char **cells = NULL;
    int group_col = -1;
    if (!in_col || !tg_col) goto oom;
    if (read_header(&r, &h) != 0) goto fail;

    for (int i = 0; i < n_in; i++) in_col[i] = need_column(&r, &h, cfg->input_columns[i], "an input");
    for (int k = 0; k < n_targets; k++)
        tg_col[k] = need_column(&r, &h, cfg->target_binds ? cfg->target_binds[k] : NULL, "a task target");
    if (cfg->group_column) {
        /* Prediction inputs need not carry the group column; training and test data must. */
        if (which == DATA_WHICH_INPUTS) group_col = header_find(&h, cfg->group_column);
        else group_col = need_column(&r, &h, cfg->group_column, "the group column");
    }
    if (r.errors > 0) goto fail;

    if (data_table_alloc(t, 1024, n_in, n_targets) != 0) goto oom;
    CsvGrow g = {.n = 0, .cap = 1024};
    cells = malloc((size_t)h.n * sizeof *cells);
    if (!cells) goto oom;
    int rc;
    while ((rc = data_read_line(&r)) > 0) {
        if (data_is_blank(r.buf)) continue;
        int n = data_split_commas(r.buf, cells, h.n);
        if (n != h.n) {
            if (!data_error_at(&r, r.line, "expected %d columns, found %d", h.n, n)) break;
            continue;
        }
        if (grow(t, &g) != 0) goto oom;
        int64_t s = g.n;
        bool ok = true;
        for (int i = 0; ok && i < n_in; i++) {
            const char *cell = cells[in_col[i]];
            DataNum res = data_parse_value(cell, &t->x[s * n_in + i]);
            ok = res == DATA_NUM_OK;
            if (!ok)
                data_error_at(&r, r.line, "column '%s': '%s' %s", h.names[in_col[i]], cell,
                              data_num_problem(res));
        }
        for (int k = 0; ok && k < n_targets; k++) {
            const char *cell = cells[tg_col[k]];
            const char *name = h.names[tg_col[k]];
            if (cfg->target_kinds && cfg->target_kinds[k] == MTL_TARGET_CLASS) {
                int64_t kk = cfg->target_classes ? cfg->target_classes[k] : 0, v;
                ok = data_parse_int64(cell, &v) && v >= 0 && v < kk;
                if (!ok)
                    data_error_at(&r, r.line, "column '%s': class label '%s' is not an integer in 0..%lld", name,
                                  cell, (long long)(kk - 1));
                else t->y[k][s] = (float)v;
            } else {
                double v;
                DataNum res = data_parse_value(cell, &v);
                ok = res == DATA_NUM_OK;
                if (!ok) data_error_at(&r, r.line, "column '%s': '%s' %s", name, cell, data_num_problem(res));
                else t->y[k][s] = (float)v;
            }
        }
        if (ok && group_col >= 0) {
            int64_t v;
            ok = data_parse_int64(cells[group_col], &v) && v >= INT32_MIN && v <= INT32_MAX;
            if (!ok)
                data_error_at(&r, r.line, "column '%s': group '%s' is not an integer", h.names[group_col],
                              cells[group_col]);
            else t->group[s] = (int32_t)v;
        } else if (ok) {
            if (s >= INT32_MAX) {
                data_error_at(&r, r.line, "too many rows for one group per row");
                break;
            }
            t->group[s] = (int32_t)s; /* no group column: every row is its own group */
        }
        if (ok) {
            t->cycle[s] = s + 1;
            g.n++;
        } else if (r.errors >= DATA_MAX_ERRORS) {
            break;
        }
    }
    if (rc < 0) goto fail;
    if (r.errors == 0 && g.n == 0) data_error_at(&r, r.line, "no data rows after the header");
    if (r.errors > 0) goto fail;
    t->n = g.n;
    t->one_sequence = group_col < 0;
    t->name = data_strdup(path);
    t->source = group_col >= 0 ? data_printf("%s: %lld rows, groups from column '%s'", path, (long long)g.n,
                                             h.names[group_col])
                               : data_printf("%s: %lld rows", path, (long long)g.n);
    if (!t->source || !t->name) goto oom;
    free(cells);
    free(in_col);
    free(tg_col);
    header_free(&h);
    data_reader_close(&r);
    return 0;
oom:
    fprintf(stderr, "%s: error: out of memory\n", path);
fail:
    free(cells);
    free(in_col);
    free(tg_col);
    header_free(&h);
    data_reader_close(&r);
    data_table_free(t);
    return -1;
}
