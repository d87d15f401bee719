/* libFuzzer harness: .mtl spec text -> lexer, parser, sema (model_load_text). Diagnostics go to
 * /dev/null; every Model is freed so leaks show up. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "diag/diag.h"
#include "sema/model.h"

static FILE *sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!sink) sink = fopen("/dev/null", "w");
    Diags d;
    diags_init(&d, sink);
    Model *m = model_load_text(&d, "fuzz.mtl", (const char *)data, size);
    if (m) model_free(m);
    diags_free(&d);
    return 0;
}
