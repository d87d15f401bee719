/* User diagnostics: GCC-style `file:line:col: error: message`, the source line and an
 * underline across the span. Line/column are computed here, only when printing.
 *
 * The printed source line is made safe for a terminal: control bytes, bytes that are not
 * valid UTF-8 and invisible or direction-changing characters (bidi controls, zero-width
 * characters, …) are shown as '?', one column each, so the underline stays aligned; tabs are
 * copied into the underline for the same reason. Messages, which may quote strings from the
 * spec, are cleaned the same way. Lines end at LF, CRLF or a lone CR; a leading UTF-8
 * byte-order mark is skipped. Very long lines are shown as a window around the span.
 * This file does not decide what is an error; it only prints them.
 */
#include "diag/diag.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Source files larger than this are refused before they are read (1 MiB): a real spec is a few
 * kilobytes, and the front end's other limits (layers, list lengths) fit well inside it, so an
 * absurd file costs neither time nor memory. */
#define DIAG_MAX_FILE ((size_t)1 << 20)
/* A message longer than this (one quoting a huge name) is cut, at a character boundary. */
#define DIAG_MAX_MESSAGE 1000
/* Lines longer than this many characters are shown as a window around the span. */
#define DIAG_MAX_SHOWN 160
#define DIAG_CONTEXT 60

void diags_init(Diags *d, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->out = out ? out : stderr;
}

void diags_free(Diags *d)
{
    for (uint32_t i = 0; i < d->n_files; i++) {
        free(d->files[i].path);
        free(d->files[i].text);
    }
    free(d->files);
    free(d->line_starts);
    memset(d, 0, sizeof *d);
}

uint32_t diags_add_source(Diags *d, const char *path, const char *text, size_t len)
{
    if (d->n_files == d->cap_files) {
        d->cap_files = d->cap_files ? 2 * d->cap_files : 4;
        d->files = realloc(d->files, d->cap_files * sizeof *d->files);
        if (!d->files)
            abort();
    }
    SourceFile *f = &d->files[d->n_files];
    f->path = strdup(path);
    f->text = malloc(len + 1);
    if (!f->path || !f->text)
        abort();
    if (len)
        memcpy(f->text, text, len);
    f->text[len] = '\0';
    f->len = len;
    return d->n_files++;
}

int diags_load_file(Diags *d, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(d->out, "%s: error: cannot open: %s\n", path, strerror(errno));
        d->n_errors++;
        return -1;
    }
    /* A regular file's size is known: refuse a huge one before reading a byte of it. */
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && (uintmax_t)st.st_size > DIAG_MAX_FILE) {
        fprintf(d->out, "%s: error: file too large (%ju bytes; a spec may have at most %zu bytes, 1 MiB)\n", path,
                (uintmax_t)st.st_size, (size_t)DIAG_MAX_FILE);
        d->n_errors++;
        fclose(fp);
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        if (len == cap) {
            /* a pipe or a file that grew: at the limit, one more byte means too large */
            if (cap >= DIAG_MAX_FILE && fgetc(fp) != EOF) {
                fprintf(d->out, "%s: error: file too large (a spec may have at most %zu bytes, 1 MiB)\n", path,
                        (size_t)DIAG_MAX_FILE);
                d->n_errors++;
                free(buf);
                fclose(fp);
                return -1;
            }
            if (cap >= DIAG_MAX_FILE)
                break;
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(fp)) {
        fprintf(d->out, "%s: error: cannot read: %s\n", path, strerror(errno));
        d->n_errors++;
        free(buf);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    uint32_t idx = diags_add_source(d, path, buf, len);
    free(buf);
    return (int)idx;
}

size_t diag_utf8_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    uint32_t cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

size_t diag_bom_len(const SourceFile *f)
{
    return f->len >= 3 && !memcmp(f->text, "\xEF\xBB\xBF", 3) ? 3 : 0;
}

/* Does a line break end at byte i? LF, and a CR not followed by LF (CRLF ends at its LF). */
static bool ends_line(const SourceFile *f, size_t i)
{
    return f->text[i] == '\n' || (f->text[i] == '\r' && (i + 1 >= f->len || f->text[i + 1] != '\n'));
}

/* Line starts of one file, built on first use so that many diagnostics (or an AST dump of a
 * huge file) do not rescan the text from the start each time. */
static void index_lines(Diags *d, uint32_t file)
{
    if (d->line_starts && d->line_file == file)
        return;
    free(d->line_starts);
    const SourceFile *f = &d->files[file];
    uint32_t n = 1;
    for (size_t i = 0; i < f->len; i++)
        n += ends_line(f, i);
    d->line_starts = malloc((size_t)n * sizeof *d->line_starts);
    if (!d->line_starts)
        abort();
    d->line_starts[0] = (uint32_t)diag_bom_len(f);
    uint32_t k = 1;
    for (size_t i = 0; i < f->len; i++)
        if (ends_line(f, i))
            d->line_starts[k++] = (uint32_t)i + 1;
    d->n_line_starts = n;
    d->line_file = file;
}

/* The start of the line holding offset (the index must be built for its file). */
static uint32_t line_index(const Diags *d, uint32_t offset)
{
    uint32_t lo = 0, hi = d->n_line_starts; /* last start <= offset */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->line_starts[mid] <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

void diag_line_col(const Diags *cd, uint32_t file, uint32_t offset, int *line, int *col)
{
    /* The index is a cache: logically const, so the cast is safe. */
    Diags *d = (Diags *)cd;
    const SourceFile *f = &d->files[file];
    if (offset > f->len)
        offset = (uint32_t)f->len;
    index_lines(d, file);
    if (offset < d->line_starts[0])
        offset = d->line_starts[0]; /* inside the byte-order mark */
    uint32_t lo = line_index(d, offset);
    *line = (int)lo + 1;
    *col = (int)(offset - d->line_starts[lo]) + 1;
}

/* The code point of a valid UTF-8 sequence of len bytes. */
static uint32_t utf8_decode(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (len == 1)
        return s[0];
    uint32_t cp = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (s[i] & 0x3F);
    return cp;
}

/* Characters a terminal does not show as themselves: controls, and the invisible formatting
 * characters that can hide or reorder text (bidi embeddings, overrides and isolates, marks,
 * zero-width characters, separators, tags). */
static bool nonprinting(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xAD || cp == 0x061C || cp == 0x180E ||
           (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) ||
           cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp >= 0xE0000 && cp <= 0xE007F);
}

/* Bytes of the character at s (at most n bytes) and whether it may be printed as it is:
 * invalid UTF-8 is one unprintable byte. */
static size_t char_at(const char *s, size_t n, bool *printable)
{
    size_t l = diag_utf8_len(s, n);
    if (l == 0) {
        *printable = false;
        return 1;
    }
    *printable = !nonprinting(utf8_decode(s, l));
    return l;
}

/* Writes text with every unprintable character replaced by '?'. Printable runs are written
 * whole: stderr is unbuffered, and one write per character made a long message take seconds. */
static void put_clean(FILE *o, const char *text, size_t n)
{
    size_t run = 0; /* start of the printable run not yet written */
    for (size_t i = 0; i < n;) {
        bool ok;
        size_t l = char_at(text + i, n - i, &ok);
        if (!ok) {
            fwrite(text + run, 1, i - run, o);
            fputc('?', o);
            run = i + l;
        }
        i += l;
    }
    fwrite(text + run, 1, n - run, o);
}

/* A message of n bytes, cut after DIAG_MAX_MESSAGE bytes (at a character boundary) with "...". */
static void put_message_text(FILE *o, const char *text, size_t n)
{
    if (n <= DIAG_MAX_MESSAGE) {
        put_clean(o, text, n);
        return;
    }
    size_t cut = DIAG_MAX_MESSAGE;
    while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
        cut--;
    put_clean(o, text, cut);
    fputs("...", o);
}

/* One displayed character of a source line. */
typedef struct Cell {
    uint32_t off; /* byte offset of its first byte */
    uint32_t len; /* bytes in the source */
    char kind;    /* 't' tab, 'c' copy bytes, '?' replaced */
} Cell;

static void print_excerpt(const Diags *d, Span at)
{
    const SourceFile *f = &d->files[at.file];
    uint32_t begin = at.begin > f->len ? (uint32_t)f->len : at.begin;
    uint32_t end = at.end > f->len ? (uint32_t)f->len : at.end;
    if (end < begin)
        end = begin;
    Diags *dm = (Diags *)d; /* the line index is a cache: logically const */
    index_lines(dm, at.file);
    if (begin < d->line_starts[0])
        begin = d->line_starts[0]; /* inside the byte-order mark */
    if (end < begin)
        end = begin;
    uint32_t ls = d->line_starts[line_index(d, begin)];
    /* Only a region of the line around the span is split into cells, so that many diagnostics on
     * one huge line cost no more than on a short one: REACH bytes hold more than DIAG_MAX_SHOWN
     * characters (at most 4 bytes each), so whenever the region is cut on a side the whole line
     * is longer than DIAG_MAX_SHOWN and the window below shows exactly what it would show for the
     * whole line. rs starts on a character (not inside a UTF-8 sequence). */
    const uint32_t REACH = 4 * (DIAG_MAX_SHOWN + 2);
    uint32_t rs = begin - ls > REACH ? begin - REACH : ls;
    while (rs > ls && rs < begin && ((unsigned char)f->text[rs] & 0xC0) == 0x80)
        rs++;
    size_t stop = (size_t)begin + REACH < f->len ? (size_t)begin + REACH : f->len;
    uint32_t le = begin;
    while (le < stop && f->text[le] != '\n' && f->text[le] != '\r')
        le++;
    bool cut_before = rs > ls, cut_after = le == stop && le < f->len && f->text[le] != '\n' && f->text[le] != '\r';
    if (end > le)
        end = le; /* a span crossing lines is underlined to the end of its first line */

    /* Split the region into cells. */
    size_t cap = 64, n = 0;
    Cell *cells = malloc(cap * sizeof *cells);
    if (!cells)
        abort();
    for (uint32_t i = rs; i < le;) {
        if (n == cap) {
            cap *= 2;
            cells = realloc(cells, cap * sizeof *cells);
            if (!cells)
                abort();
        }
        Cell cell = {i, 1, 'c'};
        if (f->text[i] == '\t') {
            cell.kind = 't';
        } else {
            bool ok;
            cell.len = (uint32_t)char_at(f->text + i, le - i, &ok);
            if (!ok)
                cell.kind = '?';
        }
        cells[n++] = cell;
        i += cell.len;
    }
    /* Cell index of the span's begin and end. */
    size_t cb = n, ce = n;
    for (size_t k = 0; k < n; k++) {
        if (cb == n && cells[k].off + cells[k].len > begin)
            cb = k;
        if (ce == n && cells[k].off >= end)
            ce = k;
    }
    if (ce < cb)
        ce = cb;
    size_t ws = 0, we = n;
    if (n > DIAG_MAX_SHOWN || cut_before || cut_after) {
        ws = cb > DIAG_CONTEXT ? cb - DIAG_CONTEXT : 0;
        we = ws + DIAG_MAX_SHOWN < n ? ws + DIAG_MAX_SHOWN : n;
        if (cb >= we) /* cannot happen with the sizes above; keep the caret visible anyway */
            cb = we;
        if (ce > we)
            ce = we;
    }
    FILE *o = d->out;
    fputs("  ", o);
    if (ws > 0 || cut_before)
        fputs("...", o);
    for (size_t k = ws; k < we; k++) {
        if (cells[k].kind == '?')
            fputc('?', o);
        else
            fwrite(f->text + cells[k].off, 1, cells[k].len, o);
    }
    if (we < n || cut_after)
        fputs("...", o);
    fputc('\n', o);
    fputs("  ", o);
    if (ws > 0 || cut_before)
        fputs("   ", o);
    for (size_t k = ws; k < cb; k++)
        fputc(cells[k].kind == 't' ? '\t' : ' ', o);
    fputc('^', o);
    for (size_t k = cb + 1; k < ce; k++)
        fputc(cells[k].kind == 't' ? '\t' : '~', o);
    fputc('\n', o);
    free(cells);
}

/* A message may quote the spec (names, strings): printed through put_clean. */
static void put_message(FILE *o, const char *fmt, va_list ap)
{
    char small[512];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(again);
        return;
    }
    if ((size_t)n < sizeof small) {
        put_message_text(o, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big)
            abort();
        vsnprintf(big, (size_t)n + 1, fmt, again);
        put_message_text(o, big, (size_t)n);
        free(big);
    }
    va_end(again);
}

static void report(Diags *d, Span at, const char *kind, const char *fmt, va_list ap)
{
    int line = 1, col = 1;
    const char *path = "?";
    if (at.file < d->n_files) {
        diag_line_col(d, at.file, at.begin, &line, &col);
        path = d->files[at.file].path;
    }
    put_clean(d->out, path, strlen(path));
    fprintf(d->out, ":%d:%d: %s: ", line, col, kind);
    put_message(d->out, fmt, ap);
    fputc('\n', d->out);
    if (at.file < d->n_files)
        print_excerpt(d, at);
}

void diag_error(Diags *d, Span at, const char *fmt, ...)
{
    if (d->n_errors >= DIAG_MAX_ERRORS) {
        if (!d->muted)
            fprintf(d->out, "mtlc: error: too many errors (more than %d); not printing the rest\n",
                    DIAG_MAX_ERRORS);
        d->muted = true;
        d->n_errors++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    report(d, at, "error", fmt, ap);
    va_end(ap);
    d->n_errors++;
}

void diag_warning(Diags *d, Span at, const char *fmt, ...)
{
    if (d->muted)
        return;
    va_list ap;
    va_start(ap, fmt);
    report(d, at, "warning", fmt, ap);
    va_end(ap);
    d->n_warnings++;
}

void diag_note(Diags *d, Span at, const char *fmt, ...)
{
    if (d->muted)
        return;
    va_list ap;
    va_start(ap, fmt);
    report(d, at, "note", fmt, ap);
    va_end(ap);
}

void diag_plain_error(Diags *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mtlc: error: ", d->out);
    put_message(d->out, fmt, ap);
    fputc('\n', d->out);
    va_end(ap);
    d->n_errors++;
}
