/* The untyped syntax tree produced by the parser (grammar/mtl.y).
 *
 * One generic node type with a kind, a span, an optional name, a number, two
 * distinguished children (a, b) and a list of children. The grammar stays small
 * and generic (settings are `key = value`, layers and losses are calls), and
 * sema gives meaning to names and checks them, so every misspelt key or layer is
 * an error with a precise span rather than a syntax error.
 * It deliberately does not resolve names, check values or compute shapes.
 */
#ifndef MTLC_AST_H
#define MTLC_AST_H

#include "diag/diag.h"

#include <stdbool.h>
#include <stdio.h>

typedef enum AstKind {
    AST_MODEL,     /* name; kids: declarations */
    AST_INPUT,     /* name; kids: dims (AST_NUMBER) */
    AST_TARGET,    /* name; a: AST_TYPE */
    AST_TYPE,      /* name ("real", "class"); kids: args (parens) or dims (brackets) */
    AST_TRUNK,     /* name (may be NULL); kids: layers */
    AST_TASK,      /* name; kids: AST_HEAD / AST_LOSS */
    AST_HEAD,      /* kids: layers */
    AST_LOSS,      /* a: AST_CALL */
    AST_BALANCE,   /* a: AST_CALL */
    AST_OPTIMIZER, /* name ("adamw"); kids: AST_GROUP */
    AST_GROUP,     /* name; kids: AST_SETTING */
    AST_DATA,      /* name ("cmapss", "csv"); kids: AST_SETTING */
    AST_TRAIN,     /* kids: AST_SETTING */
    AST_LAYER,     /* name: user layer name (may be NULL); a: AST_CALL; b: body AST_HEAD (may be NULL) */
    AST_CALL,      /* name; kids: AST_ARG; flag: written with parentheses */
    AST_ARG,       /* name: option key (NULL for a positional argument); a: value */
    AST_SETTING,   /* name: key; a: value; b: `except` value (may be NULL); flag: `bind KEY = v` */
    AST_NUMBER,    /* num, is_int; name: the text as written */
    AST_STRING,    /* name: the unescaped contents */
    AST_PATH,      /* name: dotted identifiers, "rul.head" */
    AST_TUPLE,     /* kids: values, written `( v, v )` */
    AST_LIST,      /* kids: values, written `v, v` (a bare list in a setting) */
} AstKind;

typedef struct Ast Ast;
struct Ast {
    AstKind kind;
    Span span;      /* the whole construct */
    char *name;     /* see AstKind */
    Span name_span; /* where name is written */
    double num;
    bool is_int;
    bool flag;
    Ast *a, *b;
    Ast **kids;
    int n_kids, cap_kids;
};

Ast *ast_new(AstKind kind, Span span);
/* Takes ownership of name (may be NULL). */
Ast *ast_named(AstKind kind, Span span, char *name, Span name_span);
/* Appends kid (ignored when NULL, which happens after error recovery). Returns parent. */
Ast *ast_push(Ast *parent, Ast *kid);
void ast_free(Ast *n);
const char *ast_kind_name(AstKind k);
/* Indented tree for `--emit=ast`; spans are printed as line:col-line:col. */
void ast_dump(const Diags *d, const Ast *n, FILE *out);

/* Runs the lexer and parser over a loaded source. Returns NULL when a lexical or
 * syntax error was reported (everything found has been reported). */
Ast *parse_source(Diags *d, uint32_t file);

/* Checks that a source is valid UTF-8 with no NUL bytes; reports each bad run.
 * Returns false if any was found. */
bool lex_check_encoding(Diags *d, uint32_t file);

#endif
