/* Shared by the file-based harnesses: the loaders take a path, so each input is written to one
 * per-process temporary file (mkstemp in $TMPDIR or /tmp) that is removed at exit. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int mkstemps(char *template, int suffixlen);  /* not in POSIX 2008; glibc has it */

static char fuzz_path[4096];

static void fuzz_cleanup(void) {
    if (fuzz_path[0]) unlink(fuzz_path);
}

/* Creates the temporary once (suffix such as ".txt"); returns its path. */
static const char *fuzz_tmp_path(const char *suffix) {
    if (!fuzz_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_path, sizeof fuzz_path, "%s/mtlc_fuzz_XXXXXX%s", dir && *dir ? dir : "/tmp", suffix);
        int fd = mkstemps(fuzz_path, (int)__builtin_strlen(suffix));
        if (fd < 0) {
            perror("mkstemps");
            abort();
        }
        close(fd);
        atexit(fuzz_cleanup);
    }
    return fuzz_path;
}

/* Writes the input to the temporary and returns its path. */
static const char *fuzz_write(const uint8_t *data, size_t size, const char *suffix) {
    const char *p = fuzz_tmp_path(suffix);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        abort();
    }
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return p;
}

#endif
