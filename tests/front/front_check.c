/* front_check: the front end's part of `mtlc`, for tests until the driver exists.
 *
 *   front_check SPEC                 check; diagnostics to stderr; exit 1 on error, 0 if clean
 *   front_check --report SPEC        parameter report (text) on stdout
 *   front_check --report=json SPEC   the same as JSON
 *   front_check --emit=ast SPEC      the untyped AST
 *   front_check --emit=typed SPEC    the checked model
 *
 * Exit status 2 on bad usage. It does no code generation.
 */
#include "diag/diag.h"
#include "frontend/ast.h"
#include "report/report.h"
#include "sema/model.h"

#include <string.h>

static int usage(void)
{
    fputs("usage: front_check [--report[=json] | --emit=ast|typed] SPEC\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *mode = "check", *spec = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--report") || !strcmp(a, "--report=text"))
            mode = "report";
        else if (!strcmp(a, "--report=json"))
            mode = "json";
        else if (!strcmp(a, "--emit=ast"))
            mode = "ast";
        else if (!strcmp(a, "--emit=typed"))
            mode = "typed";
        else if (!strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (a[0] == '-' && a[1] != '\0')
            return usage();
        else if (spec)
            return usage();
        else
            spec = a;
    }
    if (!spec)
        return usage();
    Diags d;
    diags_init(&d, stderr);
    int rc = 0;
    if (!strcmp(mode, "ast")) {
        int f = diags_load_file(&d, spec);
        Ast *root = NULL;
        if (f >= 0 && d.files[f].len > 0 && lex_check_encoding(&d, (uint32_t)f))
            root = parse_source(&d, (uint32_t)f);
        if (root)
            ast_dump(&d, root, stdout);
        else if (f >= 0 && d.files[f].len == 0) {
            Span at = {(uint32_t)f, 0, 0};
            diag_error(&d, at, "empty file: a spec starts with `model NAME { ... }`");
        }
        ast_free(root);
        rc = root ? 0 : 1;
    } else {
        Model *m = model_load(&d, spec);
        if (!m) {
            rc = 1;
        } else {
            if (!strcmp(mode, "report"))
                report_text(m, stdout);
            else if (!strcmp(mode, "json"))
                report_json(m, stdout);
            else if (!strcmp(mode, "typed"))
                model_dump_typed(m, stdout);
            model_free(m);
        }
    }
    diags_free(&d);
    return rc;
}
