/* Bison grammar for .mtl specs (see docs/language.md).
 *
 * Pure (reentrant) parser: all state lives in ParseCtx, passed as a parameter.
 * Locations are byte offsets (Loc); the AST carries them as Spans. The grammar is
 * deliberately generic: settings are `key = values`, layers, losses and balance
 * methods are calls `name(args)`; sema decides what the names and keys mean, so
 * a misspelt key is a precise semantic error instead of a vague syntax error.
 * Keywords are contextual: wherever a name is expected, a keyword is accepted.
 * Error recovery resynchronises at list level (declarations, layers, settings,
 * task items, groups) so several syntax errors in one file are all reported.
 */
%code requires {
#include "frontend/ast.h"
#include <stdint.h>

typedef struct Loc {
    uint32_t begin, end;
} Loc;

/* Everything the lexer and parser share; no globals. */
typedef struct ParseCtx {
    Diags *d;
    uint32_t file;
    uint32_t offset; /* byte offset of the next unread byte (lexer) */
    int depth;       /* open ( [ { not yet closed */
    int n_layers;    /* layers so far, residual bodies included */
    bool fatal;      /* a limit was hit: the lexer reports end of input from now on */
    bool had_error;  /* any lexical or syntax error */
    Ast *root;
    void *scanner;
} ParseCtx;

/* Deeper nesting than this is refused before it can exhaust the parser stack. */
#define PARSE_MAX_DEPTH 64
/* More layers in a model (residual bodies included), or more items in one list (declarations,
 * layers, arguments, settings, groups, values, dimensions), than this are refused while parsing,
 * before the tree and the checks (some compare every pair in a list) grow with them. */
#define PARSE_MAX_LAYERS 10000
#define PARSE_MAX_ITEMS 10000

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                                                \
    do {                                                                                           \
        if (N) {                                                                                   \
            (Cur).begin = YYRHSLOC(Rhs, 1).begin;                                                  \
            (Cur).end = YYRHSLOC(Rhs, N).end;                                                      \
        } else {                                                                                   \
            (Cur).begin = (Cur).end = YYRHSLOC(Rhs, 0).end;                                        \
        }                                                                                          \
    } while (0)
}

%code provides {
int lex_next(YYSTYPE *yylval_param, YYLTYPE *yylloc_param, void *yyscanner);
}

%code {
#include <stdlib.h>
#include <string.h>

static int yylex(YYSTYPE *lval, YYLTYPE *lloc, ParseCtx *pc)
{
    return lex_next(lval, lloc, pc->scanner);
}

static Span sp(const ParseCtx *pc, Loc l)
{
    Span s = {pc->file, l.begin, l.end};
    return s;
}

static void yyerror(const YYLTYPE *loc, ParseCtx *pc, const char *msg);

/* A keyword used where a name is expected. */
static Ast *kw_name(ParseCtx *pc, Loc l, const char *text)
{
    return ast_named(AST_PATH, sp(pc, l), strdup(text), sp(pc, l));
}

/* Stops the parse at a limit: the error, then end of input (as for the nesting limit). */
static void parse_limit(ParseCtx *pc, Loc at, const char *what, int max)
{
    if (!pc->fatal)
        diag_error(pc->d, sp(pc, at), "more than %d %s", max, what);
    pc->had_error = true;
    pc->fatal = true;
}

/* ast_push for the lists of the grammar, refusing an item past PARSE_MAX_ITEMS. */
static Ast *push_item(ParseCtx *pc, Ast *list, Ast *item, Loc at)
{
    if (item && list->n_kids >= PARSE_MAX_ITEMS) {
        parse_limit(pc, at, "items in one list", PARSE_MAX_ITEMS);
        ast_free(item);
        return list;
    }
    return ast_push(list, item);
}

/* Moves the text of a name node into a declaration node and frees the name node. */
static Ast *named(Ast *decl, Ast *name)
{
    if (name) {
        free(decl->name);
        decl->name = name->name;
        decl->name_span = name->span;
        name->name = NULL;
        ast_free(name);
    }
    return decl;
}
}

%define api.pure full
%define api.location.type {Loc}
%locations
%define parse.error custom
%expect 0
%parse-param {ParseCtx *pc}
%lex-param {ParseCtx *pc}

%union {
    Ast *node;
}

%token <node> IDENT "identifier" NUMBER "number" STRING "string"
%token MODEL "'model'" INPUT "'input'" TARGET "'target'" TRUNK "'trunk'" TASK "'task'"
%token HEAD "'head'" LOSS "'loss'" BALANCE "'balance'" OPTIMIZER "'optimizer'"
%token GROUP "'group'" DATA "'data'" TRAIN "'train'" EXCEPT "'except'" BIND "'bind'"

%type <node> model decls decl name opt_name dims type layers layer layer_call call args arg_list arg
%type <node> task_items task_item groups group settings setting values value_list value
%type <node> path tuple_items

%destructor { ast_free($$); } <node>

%%

/* file = model */
file
    : model { pc->root = $1; }
    ;

/* model = 'model' name '{' decl* '}' */
model
    : MODEL name '{' decls '}' { $$ = named($4, $2); $$->span = sp(pc, @$); }
    ;

decls
    : %empty      { $$ = ast_new(AST_MODEL, sp(pc, @$)); }
    | decls decl  { $$ = push_item(pc, $1, $2, @2); }
    | decls error { $$ = $1; }
    ;

/* decl = 'input' name ':' '[' dims ']'
 *      | 'target' name ':' type
 *      | 'trunk' [name] '{' layer* '}'
 *      | 'task' name '{' task_item* '}'
 *      | 'balance' call
 *      | 'optimizer' name '{' group* '}'
 *      | 'data' name '{' setting* '}'
 *      | 'train' '{' setting* '}'
 */
decl
    : INPUT name ':' '[' dims ']'  { $$ = named($5, $2); $$->kind = AST_INPUT; $$->span = sp(pc, @$); }
    | TARGET name ':' type         { $$ = named(ast_new(AST_TARGET, sp(pc, @$)), $2); $$->a = $4; }
    | TRUNK opt_name '{' layers '}' { $$ = named($4, $2); $$->kind = AST_TRUNK; $$->span = sp(pc, @$); }
    | TASK name '{' task_items '}' { $$ = named($4, $2); $$->span = sp(pc, @$); }
    | BALANCE call                 { $$ = ast_new(AST_BALANCE, sp(pc, @$)); $$->a = $2; }
    | OPTIMIZER name '{' groups '}' { $$ = named($4, $2); $$->span = sp(pc, @$); }
    | DATA name '{' settings '}'   { $$ = named($4, $2); $$->kind = AST_DATA; $$->span = sp(pc, @$); }
    | TRAIN '{' settings '}'       { $$ = $3; $$->kind = AST_TRAIN; $$->span = sp(pc, @$); }
    ;

/* name = identifier | keyword   (keywords are contextual) */
name
    : IDENT     { $$ = $1; }
    | MODEL     { $$ = kw_name(pc, @1, "model"); }
    | INPUT     { $$ = kw_name(pc, @1, "input"); }
    | TARGET    { $$ = kw_name(pc, @1, "target"); }
    | TRUNK     { $$ = kw_name(pc, @1, "trunk"); }
    | TASK      { $$ = kw_name(pc, @1, "task"); }
    | HEAD      { $$ = kw_name(pc, @1, "head"); }
    | LOSS      { $$ = kw_name(pc, @1, "loss"); }
    | BALANCE   { $$ = kw_name(pc, @1, "balance"); }
    | OPTIMIZER { $$ = kw_name(pc, @1, "optimizer"); }
    | GROUP     { $$ = kw_name(pc, @1, "group"); }
    | DATA      { $$ = kw_name(pc, @1, "data"); }
    | TRAIN     { $$ = kw_name(pc, @1, "train"); }
    | BIND      { $$ = kw_name(pc, @1, "bind"); }
    ;

opt_name
    : %empty { $$ = NULL; }
    | name   { $$ = $1; }
    ;

/* dims = number (',' number)* */
dims
    : NUMBER          { $$ = ast_push(ast_new(AST_INPUT, sp(pc, @$)), $1); }
    | dims ',' NUMBER { $$ = push_item(pc, $1, $3, @3); }
    ;

/* type = name | name '(' args ')' | name '[' dims ']'     e.g. real, class(3), real[3] */
type
    : name                  { $$ = named(ast_new(AST_TYPE, sp(pc, @$)), $1); }
    | name '(' args ')'     { $$ = named($3, $1); $$->kind = AST_TYPE; $$->flag = true; $$->span = sp(pc, @$); }
    | name '[' dims ']'     { $$ = named($3, $1); $$->kind = AST_TYPE; $$->span = sp(pc, @$); }
    ;

/* layers = layer*      layer = [name ':'] call ['{' layer* '}']
 * The body is for layers that contain layers (`residual { attention(heads = 8) }`); sema
 * decides which layers take one. */
layers
    : %empty       { $$ = ast_new(AST_HEAD, sp(pc, @$)); }
    | layers layer { $$ = push_item(pc, $1, $2, @2); }
    | layers error { $$ = $1; }
    ;

layer
    : layer_call          { $$ = $1; }
    | name ':' layer_call { $$ = named($3, $1); $$->span = sp(pc, @$); }
    ;

layer_call
    : call                {
          $$ = ast_new(AST_LAYER, sp(pc, @$));
          $$->a = $1;
          if (++pc->n_layers > PARSE_MAX_LAYERS)
              parse_limit(pc, @$, "layers in the model", PARSE_MAX_LAYERS);
      }
    | call '{' layers '}' {
          Loc body = {@2.begin, @4.end};
          if (++pc->n_layers > PARSE_MAX_LAYERS)
              parse_limit(pc, @1, "layers in the model", PARSE_MAX_LAYERS);
          $$ = ast_new(AST_LAYER, sp(pc, @$));
          $$->a = $1;
          $$->b = $3;
          $$->b->span = sp(pc, body);
      }
    ;

/* call = name ['(' [arg (',' arg)*] ')'] */
call
    : name              { $$ = named(ast_new(AST_CALL, sp(pc, @$)), $1); }
    | name '(' args ')' { $$ = named($3, $1); $$->flag = true; $$->span = sp(pc, @$); }
    ;

args
    : %empty   { $$ = ast_new(AST_CALL, sp(pc, @$)); }
    | arg_list { $$ = $1; }
    ;

arg_list
    : arg              { $$ = ast_push(ast_new(AST_CALL, sp(pc, @$)), $1); }
    | arg_list ',' arg { $$ = push_item(pc, $1, $3, @3); }
    ;

/* arg = value | name '=' value */
arg
    : value          { $$ = ast_new(AST_ARG, sp(pc, @$)); $$->a = $1; }
    | name '=' value { $$ = named(ast_new(AST_ARG, sp(pc, @$)), $1); $$->a = $3; }
    ;

/* task_item = 'head' '{' layer* '}' | 'loss' call */
task_items
    : %empty               { $$ = ast_new(AST_TASK, sp(pc, @$)); }
    | task_items task_item { $$ = push_item(pc, $1, $2, @2); }
    | task_items error     { $$ = $1; }
    ;

task_item
    : HEAD '{' layers '}' { $$ = $3; $$->kind = AST_HEAD; $$->span = sp(pc, @$); }
    | LOSS call           { $$ = ast_new(AST_LOSS, sp(pc, @$)); $$->a = $2; }
    ;

/* group = 'group' name '{' setting* '}' */
groups
    : %empty       { $$ = ast_new(AST_OPTIMIZER, sp(pc, @$)); }
    | groups group { $$ = push_item(pc, $1, $2, @2); }
    | groups error { $$ = $1; }
    ;

group
    : GROUP name '{' settings '}' { $$ = named($4, $2); $$->kind = AST_GROUP; $$->span = sp(pc, @$); }
    ;

/* setting = name '=' values ['except' values] | 'bind' name '=' values
 * Settings are separated by ';' or just by starting the next one. */
settings
    : %empty           { $$ = ast_new(AST_DATA, sp(pc, @$)); }
    | settings setting { $$ = push_item(pc, $1, $2, @2); }
    | settings ';'     { $$ = $1; }
    | settings error   { $$ = $1; }
    ;

setting
    : name '=' values                { $$ = named(ast_new(AST_SETTING, sp(pc, @$)), $1); $$->a = $3; }
    | name '=' values EXCEPT values  { $$ = named(ast_new(AST_SETTING, sp(pc, @$)), $1); $$->a = $3; $$->b = $5; }
    | BIND name '=' values           { $$ = named(ast_new(AST_SETTING, sp(pc, @$)), $2); $$->a = $4; $$->flag = true; }
    ;

/* values = value (',' value)*     a single value stays itself; several make a list */
values
    : value      { $$ = $1; }
    | value_list { $$ = $1; }
    ;

value_list
    : value ',' value      { $$ = ast_push(ast_push(ast_new(AST_LIST, sp(pc, @$)), $1), $3); }
    | value_list ',' value { $$ = push_item(pc, $1, $3, @3); $$->span = sp(pc, @$); }
    ;

/* value = number | string | path | '(' [value (',' value)*] ')' */
value
    : NUMBER                 { $$ = $1; }
    | STRING                 { $$ = $1; }
    | path                   { $$ = $1; }
    | '(' ')'                { $$ = ast_new(AST_TUPLE, sp(pc, @$)); }
    | '(' tuple_items ')'    { $$ = $2; $$->span = sp(pc, @$); }
    ;

tuple_items
    : value                 { $$ = ast_push(ast_new(AST_TUPLE, sp(pc, @$)), $1); }
    | tuple_items ',' value { $$ = push_item(pc, $1, $3, @3); }
    ;

/* path = name ('.' name)* */
path
    : name          { $$ = $1; }
    | path '.' name {
          size_t la = strlen($1->name), lb = strlen($3->name);
          char *s = malloc(la + lb + 2);
          memcpy(s, $1->name, la);
          s[la] = '.';
          memcpy(s + la + 1, $3->name, lb + 1);
          free($1->name);
          $1->name = s;
          $1->span = $1->name_span = sp(pc, @$);
          ast_free($3);
          $$ = $1;
      }
    ;

%%

/* Bison calls this only for "memory exhausted"; syntax errors go to yyreport_syntax_error. */
static void yyerror(const YYLTYPE *loc, ParseCtx *pc, const char *msg)
{
    pc->had_error = true;
    diag_error(pc->d, sp(pc, *loc), "%s", msg);
}

/* Bison's names carry quotes ("\"identifier\"", "'{'", "\"'model'\""); print them bare. */
static void put_symbol(char *buf, size_t cap, size_t *len, yysymbol_kind_t sym)
{
    const char *name = yysymbol_name(sym);
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '"' && name[n - 1] == '"') {
        name++;
        n -= 2;
    }
    if (*len + n + 1 < cap) {
        memcpy(buf + *len, name, n);
        *len += n;
        buf[*len] = '\0';
    }
}

static void put_text(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 < cap) {
        memcpy(buf + *len, s, n);
        *len += n;
        buf[*len] = '\0';
    }
}

/* "unexpected identifier 'relu', expected ',' or ')'" */
static int yyreport_syntax_error(const yypcontext_t *ctx, ParseCtx *pc)
{
    pc->had_error = true;
    if (pc->fatal)
        return 0; /* the limit error (nesting, layers, list items) already explains it */
    char msg[512];
    size_t len = 0;
    msg[0] = '\0';
    yysymbol_kind_t tok = yypcontext_token(ctx);
    const Loc *loc = yypcontext_location(ctx);
    put_text(msg, sizeof msg, &len, "unexpected ");
    put_symbol(msg, sizeof msg, &len, tok);
    if (tok == YYSYMBOL_IDENT || tok == YYSYMBOL_NUMBER) {
        const SourceFile *f = &pc->d->files[pc->file];
        uint32_t n = loc->end - loc->begin;
        char word[48];
        if (n > 40)
            n = 40;
        memcpy(word, f->text + loc->begin, n);
        word[n] = '\0';
        put_text(msg, sizeof msg, &len, " '");
        put_text(msg, sizeof msg, &len, word);
        put_text(msg, sizeof msg, &len, "'");
    }
    int n_exp = yypcontext_expected_tokens(ctx, NULL, 0);
    if (n_exp > 10) {
        /* Long lists are names or values: every keyword is also a name. Say that instead. */
        yysymbol_kind_t all[YYNTOKENS];
        int n_all = yypcontext_expected_tokens(ctx, all, YYNTOKENS);
        bool want_value = false, want_name = false;
        for (int i = 0; i < n_all; i++) {
            want_value |= all[i] == YYSYMBOL_NUMBER || all[i] == YYSYMBOL_STRING;
            want_name |= all[i] == YYSYMBOL_IDENT;
        }
        if (want_value)
            put_text(msg, sizeof msg, &len, ", expected a value (number, string, name or tuple)");
        else if (want_name)
            put_text(msg, sizeof msg, &len, ", expected a name");
    } else if (n_exp > 0) {
        yysymbol_kind_t exp[10];
        n_exp = yypcontext_expected_tokens(ctx, exp, 10);
        put_text(msg, sizeof msg, &len, ", expected ");
        for (int i = 0; i < n_exp; i++) {
            if (i > 0)
                put_text(msg, sizeof msg, &len, i == n_exp - 1 ? " or " : ", ");
            put_symbol(msg, sizeof msg, &len, exp[i]);
        }
    }
    diag_error(pc->d, sp(pc, *loc), "%s", msg);
    return 0;
}
