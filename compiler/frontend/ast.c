/* Construction and destruction of AST nodes (see ast.h). No semantics here. */
#include "frontend/ast.h"

#include <stdlib.h>

Ast *ast_new(AstKind kind, Span span)
{
    Ast *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->kind = kind;
    n->span = span;
    n->name_span = span;
    return n;
}

Ast *ast_named(AstKind kind, Span span, char *name, Span name_span)
{
    Ast *n = ast_new(kind, span);
    n->name = name;
    n->name_span = name_span;
    return n;
}

Ast *ast_push(Ast *parent, Ast *kid)
{
    if (!kid)
        return parent;
    if (parent->n_kids == parent->cap_kids) {
        parent->cap_kids = parent->cap_kids ? 2 * parent->cap_kids : 4;
        parent->kids = realloc(parent->kids, (size_t)parent->cap_kids * sizeof *parent->kids);
        if (!parent->kids)
            abort();
    }
    parent->kids[parent->n_kids++] = kid;
    return parent;
}

void ast_free(Ast *n)
{
    if (!n)
        return;
    /* Nesting is bounded by the lexer (PARSE_MAX_DEPTH) and lists are flat, so recursion is shallow. */
    for (int i = 0; i < n->n_kids; i++)
        ast_free(n->kids[i]);
    free(n->kids);
    ast_free(n->a);
    ast_free(n->b);
    free(n->name);
    free(n);
}

const char *ast_kind_name(AstKind k)
{
    static const char *const names[] = {
        [AST_MODEL] = "model",     [AST_INPUT] = "input",       [AST_TARGET] = "target",
        [AST_TYPE] = "type",       [AST_TRUNK] = "trunk",       [AST_TASK] = "task",
        [AST_HEAD] = "head",       [AST_LOSS] = "loss",         [AST_BALANCE] = "balance",
        [AST_OPTIMIZER] = "optimizer", [AST_GROUP] = "group",   [AST_DATA] = "data",
        [AST_TRAIN] = "train",     [AST_LAYER] = "layer",       [AST_CALL] = "call",
        [AST_ARG] = "arg",         [AST_SETTING] = "setting",   [AST_NUMBER] = "number",
        [AST_STRING] = "string",   [AST_PATH] = "name",         [AST_TUPLE] = "tuple",
        [AST_LIST] = "list",
    };
    return (unsigned)k < sizeof names / sizeof names[0] && names[k] ? names[k] : "?";
}
