/* The encoding check that runs before the lexer: a spec must be UTF-8 without NUL bytes.
 * Doing it once over the whole buffer keeps the flex rules simple (they never see a NUL,
 * which flex would treat as end of buffer) and reports every bad run at its position.
 * It does not look at what the text means. */
#include "frontend/ast.h"

/* After this many encoding errors the file is clearly not text; stop listing them. */
#define ENCODING_MAX_REPORTS 10

bool lex_check_encoding(Diags *d, uint32_t file)
{
    const SourceFile *f = &d->files[file];
    int reported = 0;
    bool ok = true;
    size_t i = 0;
    while (i < f->len) {
        unsigned char c = (unsigned char)f->text[i];
        size_t j = i;
        const char *what = NULL;
        if (c == 0) {
            while (j < f->len && f->text[j] == 0)
                j++;
            what = "NUL byte in source file";
        } else if (c >= 0x80 && diag_utf8_len(f->text + i, f->len - i) == 0) {
            /* group a run of undecodable bytes into one error */
            while (j < f->len && (unsigned char)f->text[j] >= 0x80 &&
                   diag_utf8_len(f->text + j, f->len - j) == 0)
                j++;
            what = "invalid UTF-8 (the file must be UTF-8 text)";
        } else {
            size_t l = c < 0x80 ? 1 : diag_utf8_len(f->text + i, f->len - i);
            i += l;
            continue;
        }
        ok = false;
        if (reported < ENCODING_MAX_REPORTS) {
            Span s = {file, (uint32_t)i, (uint32_t)j};
            diag_error(d, s, "%s", what);
        } else if (reported == ENCODING_MAX_REPORTS) {
            diag_plain_error(d, "%s: too many encoding errors; not listing more", f->path);
        }
        reported++;
        i = j;
    }
    return ok;
}
