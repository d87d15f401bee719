/* `--emit=ast`: the untyped tree, one node per line, indented by depth, with its
 * source range as line:col-line:col. Meant for people debugging the parser; the
 * format is stable enough for golden tests but is not an interchange format. */
#include "frontend/ast.h"

static void dump_span(const Diags *d, Span s, FILE *out)
{
    int l0, c0, l1, c1;
    diag_line_col(d, s.file, s.begin, &l0, &c0);
    diag_line_col(d, s.file, s.end, &l1, &c1);
    fprintf(out, " @%d:%d-%d:%d", l0, c0, l1, c1);
}

static void dump(const Diags *d, const Ast *n, int depth, const char *role, FILE *out)
{
    if (!n)
        return;
    fprintf(out, "%*s%s%s", 2 * depth, "", role, ast_kind_name(n->kind));
    switch (n->kind) {
    case AST_STRING:
        fprintf(out, " \"%s\"", n->name);
        break;
    case AST_NUMBER:
        fprintf(out, " %s%s", n->name ? n->name : "?", n->is_int ? " (int)" : "");
        break;
    case AST_SETTING:
        fprintf(out, " %s%s", n->flag ? "bind " : "", n->name ? n->name : "?");
        break;
    case AST_CALL:
    case AST_TYPE:
        if (n->name)
            fprintf(out, " %s", n->name);
        if (n->flag)
            fputs(" ()", out);
        break;
    default:
        if (n->name)
            fprintf(out, " %s", n->name);
        break;
    }
    dump_span(d, n->span, out);
    fputc('\n', out);
    dump(d, n->a, depth + 1, n->kind == AST_SETTING || n->kind == AST_ARG ? "= " : "", out);
    dump(d, n->b, depth + 1, n->kind == AST_LAYER ? "body " : "except ", out);
    for (int i = 0; i < n->n_kids; i++)
        dump(d, n->kids[i], depth + 1, "", out);
}

void ast_dump(const Diags *d, const Ast *n, FILE *out)
{
    dump(d, n, 0, "", out);
}
