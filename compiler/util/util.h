/* Allocation wrappers that never return NULL, and the internal-error exit for compiler bugs. */
#ifndef MTLC_UTIL_H
#define MTLC_UTIL_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* A compiler bug, not a user error: prints "mtlc: internal error: ..." and aborts. */
_Noreturn void internal_error_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define internal_error(...) internal_error_at(__FILE__, __LINE__, __VA_ARGS__)

#endif
