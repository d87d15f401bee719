/* C-MAPSS text rows: 26 whitespace-separated numbers per line (engine, cycle, setting1..3,
 * s1..s21), and the RUL_FD00x files (one integer per line).
 *
 * Every malformed line is reported as "path:line: error: reason" (up to DATA_MAX_ERRORS) and
 * the read fails; blank lines are skipped (the distributed RUL_FD001.txt starts with one).
 * Structure checks (engines in contiguous blocks, cycles increasing) are done here so real
 * files and the synthetic fleet's text pass through the same gate. Labels, features and
 * normalisation are not this file's business.
 */
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *column_name(int c, char *buf, size_t size) {
    if (c == 0) return "engine";
    if (c == 1) return "cycle";
    if (c < 5) snprintf(buf, size, "setting%d", c - 1);
    else snprintf(buf, size, "s%d", c - 4);
    return buf;
}

static int rows_push(DataRows *rows, const double *v, int64_t line) {
    if (rows->n == rows->cap) {
        int64_t cap = rows->cap ? rows->cap * 2 : 4096;
        double *nv = realloc(rows->v, (size_t)cap * MTL_CMAPSS_COLUMNS * sizeof *nv);
        if (!nv) return -1;
        rows->v = nv;
        int64_t *nl = realloc(rows->line, (size_t)cap * sizeof *nl);
        if (!nl) return -1;
        rows->line = nl;
        rows->cap = cap;
    }
    memcpy(rows->v + rows->n * MTL_CMAPSS_COLUMNS, v, MTL_CMAPSS_COLUMNS * sizeof *v);
    rows->line[rows->n++] = line;
    return 0;
}

void data_rows_free(DataRows *rows) {
    free(rows->v);
    free(rows->line);
    memset(rows, 0, sizeof *rows);
}

/* Parses one line into v; false (after reporting) if it is malformed. */
static bool parse_row(DataReader *r, char *text, double *v) {
    char *tok[MTL_CMAPSS_COLUMNS];
    int n = data_split_ws(text, tok, MTL_CMAPSS_COLUMNS);
    if (n != MTL_CMAPSS_COLUMNS) {
        data_error_at(r, r->line, "expected %d columns, found %d", MTL_CMAPSS_COLUMNS, n);
        return false;
    }
    for (int c = 0; c < MTL_CMAPSS_COLUMNS; c++) {
        char name[16];
        if (c < 2) {
            /* Engine and cycle are identifiers, so "1.0" is rejected rather than rounded. */
            int64_t iv;
            if (!data_parse_int64(tok[c], &iv) || iv < 0 || iv > INT32_MAX) {
                double dv;
                if (data_parse_double(tok[c], &dv))
                    data_error_at(r, r->line, "%s '%s' is not a non-negative integer",
                                  column_name(c, name, sizeof name), tok[c]);
                else
                    data_error_at(r, r->line, "%s: '%s' is not a number",
                                  column_name(c, name, sizeof name), tok[c]);
                return false;
            }
            v[c] = (double)iv;
        } else {
            DataNum res = data_parse_value(tok[c], &v[c]);
            if (res != DATA_NUM_OK) {
                data_error_at(r, r->line, "column %s: '%s' %s", column_name(c, name, sizeof name),
                              tok[c], data_num_problem(res));
                return false;
            }
        }
    }
    return true;
}

typedef struct EngineBlock {
    int64_t engine, line;
} EngineBlock;

static int block_cmp(const void *a, const void *b) {
    const EngineBlock *x = a, *y = b;
    if (x->engine != y->engine) return x->engine < y->engine ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* Engines must be contiguous blocks and cycles strictly increasing inside each block; the RUL
 * of a row is computed from its block's last cycle, so a broken structure would silently
 * produce wrong labels. */
static int check_structure(DataReader *r, const DataRows *rows) {
    int64_t n_blocks = 0;
    for (int64_t i = 0; i < rows->n; i++)
        if (i == 0 || rows->v[i * MTL_CMAPSS_COLUMNS] != rows->v[(i - 1) * MTL_CMAPSS_COLUMNS]) n_blocks++;
    EngineBlock *blocks = malloc((size_t)(n_blocks ? n_blocks : 1) * sizeof *blocks);
    if (!blocks) {
        fprintf(stderr, "%s: error: out of memory\n", r->path);
        return -1;
    }
    int bad = 0;
    int64_t b = 0;
    for (int64_t i = 0; i < rows->n; i++) {
        const double *v = rows->v + i * MTL_CMAPSS_COLUMNS;
        if (i == 0 || v[0] != v[-MTL_CMAPSS_COLUMNS]) {
            blocks[b].engine = (int64_t)v[0];
            blocks[b++].line = rows->line[i];
        } else if (v[1] <= v[1 - MTL_CMAPSS_COLUMNS]) {
            bad = 1;
            if (!data_error_at(r, rows->line[i],
                               "engine %lld: cycle %lld does not follow cycle %lld (cycles must "
                               "increase within an engine)",
                               (long long)v[0], (long long)v[1], (long long)v[1 - MTL_CMAPSS_COLUMNS]))
                break;
        }
    }
    qsort(blocks, (size_t)n_blocks, sizeof *blocks, block_cmp);
    /* sorted by engine, then line: the first block of a run of equal engines is where that
     * engine's rows start */
    int64_t first = 0;
    for (int64_t i = 1; i < n_blocks && r->errors < DATA_MAX_ERRORS; i++) {
        if (blocks[i].engine != blocks[i - 1].engine) {
            first = i;
            continue;
        }
        bad = 1;
        data_error_at(r, blocks[i].line,
                      "engine %lld appears again (its rows start at line %lld; each engine's "
                      "rows must be one contiguous block)",
                      (long long)blocks[i].engine, (long long)blocks[first].line);
    }
    free(blocks);
    return bad ? -1 : 0;
}

int data_cmapss_read_rows(FILE *f, const char *path, DataRows *rows) {
    DataReader r = {.f = f, .path = path};
    memset(rows, 0, sizeof *rows);
    int rc;
    double v[MTL_CMAPSS_COLUMNS];
    while ((rc = data_read_line(&r)) > 0) {
        if (data_is_blank(r.buf)) continue;
        if (!parse_row(&r, r.buf, v)) {
            if (r.errors >= DATA_MAX_ERRORS) break;
            continue;
        }
        if (rows_push(rows, v, r.line) != 0) {
            fprintf(stderr, "%s:%lld: error: out of memory\n", path, (long long)r.line);
            r.errors++;
            break;
        }
    }
    if (rc == 0 && r.errors == 0 && rows->n == 0)
        data_error_at(&r, r.line > 0 ? r.line : 1, "no data rows (empty file)");
    if (r.errors == 0 && check_structure(&r, rows) != 0 && r.errors == 0) r.errors++;
    free(r.buf);
    if (r.errors > 0 || rc < 0) {
        data_rows_free(rows);
        return -1;
    }
    return 0;
}

int data_cmapss_read_rul(FILE *f, const char *path, int64_t **vals, int64_t *n, int64_t *last_line) {
    DataReader r = {.f = f, .path = path};
    int64_t cap = 0, count = 0, *out = NULL;
    *last_line = 0;
    int rc;
    while ((rc = data_read_line(&r)) > 0) {
        if (data_is_blank(r.buf)) continue;
        char *tok[2];
        int nt = data_split_ws(r.buf, tok, 2);
        int64_t value;
        if (nt != 1) {
            if (!data_error_at(&r, r.line, "expected one RUL value, found %d columns", nt)) break;
            continue;
        }
        if (!data_parse_int64(tok[0], &value) || value < 0) {
            if (!data_error_at(&r, r.line, "RUL '%s' is not a non-negative integer", tok[0])) break;
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 128;
            int64_t *nv = realloc(out, (size_t)cap * sizeof *nv);
            if (!nv) {
                fprintf(stderr, "%s: error: out of memory\n", path);
                r.errors++;
                break;
            }
            out = nv;
        }
        out[count++] = value;
        *last_line = r.line;
    }
    free(r.buf);
    if (r.errors > 0 || rc < 0) {
        free(out);
        return -1;
    }
    *vals = out;
    *n = count;
    return 0;
}
