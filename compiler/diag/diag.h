/* Source spans and user diagnostics.
 *
 * Every user-facing error in the compiler goes through diag_error(): it prints
 *   file:line:col: error: message
 *     <the source line>
 *     ^~~~~~~~ (underline over the whole span on that line)
 * followed by any note:s attached with diag_note(). Line and column are
 * computed only when printing; spans are byte offsets into a loaded source.
 * Compiler bugs are not diagnostics: they are asserts / internal errors.
 */
#ifndef MTLC_DIAG_H
#define MTLC_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct Span {
    uint32_t file;  /* index into Diags.files */
    uint32_t begin; /* byte offset of the first byte */
    uint32_t end;   /* byte offset one past the last byte (end >= begin) */
} Span;

typedef struct SourceFile {
    char *path; /* as given on the command line */
    char *text; /* whole file, NUL-terminated (NUL bytes inside are a lex error) */
    size_t len;
} SourceFile;

typedef struct Diags {
    SourceFile *files;
    uint32_t n_files, cap_files;
    int n_errors;
    int n_warnings;
    FILE *out; /* where diagnostics go; stderr by default */
    bool muted; /* past DIAG_MAX_ERRORS: errors are counted, not printed (notes follow their error) */
    uint32_t *line_starts; /* lazily built index of line starts for files[line_file] */
    uint32_t n_line_starts, line_file;
} Diags;

/* After this many errors the rest are counted but not printed. */
#define DIAG_MAX_ERRORS 100

void diags_init(Diags *d, FILE *out);
void diags_free(Diags *d);

/* Loads a file; on failure prints "path: error: reason" and returns -1. */
int diags_load_file(Diags *d, const char *path);
/* Registers in-memory text (tests); returns the file index. */
uint32_t diags_add_source(Diags *d, const char *path, const char *text, size_t len);

void diag_error(Diags *d, Span at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diags *d, Span at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A note attached to the diagnostic printed just before it. */
void diag_note(Diags *d, Span at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An error with no source position ("mtlc: error: ..."). */
void diag_plain_error(Diags *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Length of the valid UTF-8 sequence starting at s (at most n bytes), 0 if invalid. */
size_t diag_utf8_len(const char *s, size_t n);

/* 3 if the file starts with a UTF-8 byte-order mark (which the lexer and the excerpts skip), else 0. */
size_t diag_bom_len(const SourceFile *f);

/* 1-based line and column (column counts bytes; a leading byte-order mark is not counted) of a
 * byte offset. Lines end at LF, CRLF or a lone CR. */
void diag_line_col(const Diags *d, uint32_t file, uint32_t offset, int *line, int *col);

#endif
