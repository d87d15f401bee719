/* Checked text input for the data loaders: opening, line reading, diagnostics in the
 * "path:line: error: reason" form, tokenising and whole-token number conversion.
 *
 * It deliberately knows nothing about C-MAPSS or CSV layouts; those live in their own files.
 * Nothing here exits the process: every failure is printed and returned.
 */
#include "data_internal.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

FILE *data_fopen(const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (!f) fprintf(stderr, "%s: error: cannot open: %s\n", path, strerror(errno));
    return f;
}

int data_read_line(DataReader *r) {
    errno = 0;
    ssize_t len = getline(&r->buf, &r->cap, r->f);
    if (len < 0) {
        if (ferror(r->f)) {
            fprintf(stderr, "%s:%lld: error: read failed: %s\n", r->path, (long long)(r->line + 1),
                    strerror(errno ? errno : EIO));
            r->errors++;
            return -1;
        }
        return 0;
    }
    r->line++;
    /* Strip the newline and a Windows carriage return so both line endings read the same. */
    while (len > 0 && (r->buf[len - 1] == '\n' || r->buf[len - 1] == '\r')) r->buf[--len] = '\0';
    /* An embedded NUL would silently truncate the line; treat the file as not text. */
    if ((size_t)len != strlen(r->buf)) {
        data_error_at(r, r->line, "line contains a NUL byte (not a text file?)");
        return -1;
    }
    return 1;
}

void data_reader_close(DataReader *r) {
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    if (r->f) fclose(r->f);
    r->f = NULL;
}

bool data_error_at(DataReader *r, int64_t line, const char *fmt, ...) {
    if (r->errors >= DATA_MAX_ERRORS) return false;
    fprintf(stderr, "%s:%lld: error: ", r->path, (long long)line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (++r->errors == DATA_MAX_ERRORS)
        fprintf(stderr, "%s: error: too many errors, stopping\n", r->path);
    return r->errors < DATA_MAX_ERRORS;
}

int data_split_ws(char *s, char **tok, int max) {
    int n = 0;
    for (;;) {
        while (*s && isspace((unsigned char)*s)) s++;
        if (!*s) break;
        if (n < max) tok[n] = s;
        n++;
        while (*s && !isspace((unsigned char)*s)) s++;
        if (!*s) break;
        *s++ = '\0';
    }
    return n;
}

/* Trims blanks and one pair of surrounding double quotes. Commas inside quotes are not
 * supported: numeric data files do not need them and a full CSV dialect is out of scope. */
static char *trim_cell(char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1])) s[--len] = '\0';
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s[len - 1] = '\0';
        s++;
    }
    return s;
}

int data_split_commas(char *s, char **tok, int max) {
    int n = 0;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma) *comma = '\0';
        if (n < max) tok[n] = trim_cell(s);
        n++;
        if (!comma) break;
        s = comma + 1;
    }
    return n;
}

DataNum data_parse_value(const char *s, double *out) {
    /* Decimal notation only: [+-]digits[.digits][e[+-]digits]. strtod alone would also take
     * hex ("0x10"), "inf" and "nan", which are not data. */
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    bool digits = false;
    while (isdigit((unsigned char)*p)) p++, digits = true;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) p++, digits = true;
    }
    if (!digits) return DATA_NUM_BAD;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return DATA_NUM_BAD;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p != '\0') return DATA_NUM_BAD;
    errno = 0;
    double v = strtod(s, NULL);
    /* Underflow to a denormal/zero is harmless; beyond float32 is not representable. */
    if (!isfinite(v) || fabs(v) > FLT_MAX) return DATA_NUM_RANGE;
    *out = v;
    return DATA_NUM_OK;
}

bool data_parse_double(const char *s, double *out) { return data_parse_value(s, out) == DATA_NUM_OK; }

bool data_parse_int64(const char *s, int64_t *out) {
    if (!*s || isspace((unsigned char)*s)) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || errno == ERANGE) return false;
    *out = (int64_t)v;
    return true;
}

bool data_is_blank(const char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    return *s == '\0';
}

char *data_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *data_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

const char *data_num_problem(DataNum r) {
    return r == DATA_NUM_RANGE ? "is out of the float32 range" : "is not a number";
}
