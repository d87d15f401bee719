/* Semantic analysis: AST -> Model.
 *
 * Resolves declarations, builds the trunk and head blocks with PyTorch-style parameter
 * paths and per-sample shapes, checks tasks against targets and losses, balance weights,
 * data binding and training defaults. Group coverage is in sema_groups.c. Every check
 * reports through diag_error() with the exact span and keeps going, so one run lists every
 * independent error; the Model is returned only if none was found.
 * It does not lower to IR and does not know about code generation.
 */
#include "sema/sema_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------ */

char *sema_strdup(const char *s)
{
    char *r = strdup(s ? s : "");
    if (!r)
        abort();
    return r;
}

char *sema_path(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *r = malloc(n);
    if (!r)
        abort();
    snprintf(r, n, "%s.%s", a, b);
    return r;
}

static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return 99;
    int row[33];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* The closest choice within two edits, or NULL: used for "did you mean" hints. */
const char *sema_suggest(const char *word, const char *const *choices)
{
    const char *best = NULL;
    int best_d = 3;
    for (int i = 0; choices[i]; i++) {
        int dist = edit_distance(word, choices[i]);
        if (dist < best_d) {
            best_d = dist;
            best = choices[i];
        }
    }
    return best;
}

/* '*' matches any run of characters (including dots); everything else matches itself. */
bool sema_glob(const char *p, const char *t)
{
    const char *star = NULL, *mark = NULL;
    while (*t) {
        if (*p == '*') {
            star = p++;
            mark = t;
        } else if (*p == *t) {
            p++;
            t++;
        } else if (star) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* True when a number literal has a nonzero digit before its exponent ("1e-50", not "0.0e5"). */
static bool literal_nonzero(const char *text)
{
    for (const char *p = text; *p && *p != 'e' && *p != 'E'; p++)
        if (*p >= '1' && *p <= '9')
            return true;
    return false;
}

/* Every setting read through here is stored as a float32 (the model table, the trainer), so
 * this is where a number that float32 cannot hold is refused: one whose magnitude rounds past
 * FLT_MAX (or was already infinite as a double), or a nonzero one that would round to 0. */
bool sema_number(Sema *s, const Ast *v, const char *what, double *out)
{
    if (!v || v->kind != AST_NUMBER) {
        diag_error(s->d, v ? v->span : s->root->span, "%s expects a number", what);
        return false;
    }
    /* Round to nearest: from 2^128 - 2^103 (half an ulp past FLT_MAX) the float is infinite, and
     * at or below 2^-150 (half the smallest subnormal) it is 0. */
    double mag = fabs(v->num);
    if (!(mag < ldexp(1.0, 128) - ldexp(1.0, 103))) {
        diag_error(s->d, v->span, "%s does not fit a 32-bit float", v->name);
        return false;
    }
    if (mag <= ldexp(1.0, -150) && literal_nonzero(v->name)) {
        diag_error(s->d, v->span, "%s is too small for a 32-bit float (it would be 0)", v->name);
        return false;
    }
    *out = v->num;
    return true;
}

bool sema_int(Sema *s, const Ast *v, const char *what, int64_t *out)
{
    if (!v || v->kind != AST_NUMBER || !v->is_int) {
        diag_error(s->d, v ? v->span : s->root->span, "%s expects a whole number", what);
        return false;
    }
    if (fabs(v->num) > (double)SEMA_INT_LIMIT)
        *out = v->num > 0 ? SEMA_INT_LIMIT + 1 : -SEMA_INT_LIMIT - 1;
    else
        *out = (int64_t)v->num;
    return true;
}

bool sema_bool(Sema *s, const Ast *v, const char *what, bool *out)
{
    if (v && v->kind == AST_PATH && (!strcmp(v->name, "true") || !strcmp(v->name, "false"))) {
        *out = v->name[0] == 't';
        return true;
    }
    diag_error(s->d, v ? v->span : s->root->span, "%s expects true or false", what);
    return false;
}

static bool sema_string(Sema *s, const Ast *v, const char *what, char **out)
{
    if (!v || v->kind != AST_STRING) {
        diag_error(s->d, v ? v->span : s->root->span, "%s expects a quoted string", what);
        return false;
    }
    free(*out);
    *out = sema_strdup(v->name);
    return true;
}

/* A csv column name: a quoted, non-empty string (no column has the empty name). */
static bool sema_column(Sema *s, const Ast *v, const char *what, char **out)
{
    if (!sema_string(s, v, what, out))
        return false;
    if ((*out)[0] == '\0') {
        diag_error(s->d, v->span, "%s names an empty column (\"\" is not a column name)", what);
        return false;
    }
    return true;
}

bool sema_seen(Sema *s, const Ast **seen, int n_seen, const Ast *setting)
{
    for (int i = 0; i < n_seen; i++) {
        if (seen[i] != setting && seen[i]->flag == setting->flag && !strcmp(seen[i]->name, setting->name)) {
            diag_error(s->d, setting->name_span, "'%s' is set twice", setting->name);
            diag_note(s->d, seen[i]->name_span, "first set here");
            return true;
        }
    }
    return false;
}

static void unknown_key(Sema *s, const Ast *setting, const char *where, const char *const *keys)
{
    const char *hint = sema_suggest(setting->name, keys);
    if (hint)
        diag_error(s->d, setting->name_span, "unknown setting '%s' in %s; did you mean '%s'?",
                   setting->name, where, hint);
    else
        diag_error(s->d, setting->name_span, "unknown setting '%s' in %s", setting->name, where);
}

/* "first declared here" for a duplicate declaration. */
static void duplicate(Sema *s, const Ast *again, const Ast *first, const char *what)
{
    diag_error(s->d, again->name_span, "duplicate %s '%s'", what, again->name);
    diag_note(s->d, first->name_span, "'%s' first declared here", first->name);
}

static void push_ptr(const Ast ***arr, int *n, const Ast *p)
{
    *arr = realloc(*arr, (size_t)(*n + 1) * sizeof **arr);
    if (!*arr)
        abort();
    (*arr)[(*n)++] = p;
}

/* ---- declarations ------------------------------------------------------------------- */

/* At most one of each singleton declaration; remembers the first. */
static void once(Sema *s, const Ast **slot, const Ast *decl, const char *what)
{
    if (*slot) {
        diag_error(s->d, decl->span, "second '%s' declaration (a model has at most one)", what);
        diag_note(s->d, (*slot)->span, "first '%s' declared here", what);
        return;
    }
    *slot = decl;
}

static void collect(Sema *s)
{
    const Ast *root = s->root;
    for (int i = 0; i < root->n_kids; i++) {
        const Ast *k = root->kids[i];
        switch (k->kind) {
        case AST_INPUT: once(s, &s->input, k, "input"); break;
        case AST_TRUNK: once(s, &s->trunk, k, "trunk"); break;
        case AST_BALANCE: once(s, &s->balance, k, "balance"); break;
        case AST_OPTIMIZER: once(s, &s->optimizer, k, "optimizer"); break;
        case AST_DATA: once(s, &s->data, k, "data"); break;
        case AST_TRAIN: once(s, &s->train, k, "train"); break;
        case AST_TARGET: {
            bool dup = false;
            for (int j = 0; j < s->n_targets && !dup; j++)
                if (!strcmp(s->targets[j]->name, k->name)) {
                    duplicate(s, k, s->targets[j], "target");
                    dup = true;
                }
            if (!dup)
                push_ptr(&s->targets, &s->n_targets, k);
            break;
        }
        case AST_TASK: {
            bool dup = false;
            for (int j = 0; j < s->m->n_tasks && !dup; j++)
                if (!strcmp(s->task_decls[j]->name, k->name)) {
                    duplicate(s, k, s->task_decls[j], "task");
                    dup = true;
                }
            if (!dup) {
                push_ptr(&s->task_decls, &s->m->n_tasks, k);
            }
            break;
        }
        default: break;
        }
    }
    Span model_name = root->name_span;
    if (!s->input)
        diag_error(s->d, model_name, "model '%s' has no input (add `input x : [N]`)", root->name);
    if (!s->trunk)
        diag_error(s->d, model_name, "model '%s' has no trunk (add `trunk { ... }`; it may be empty)",
                   root->name);
    if (s->m->n_tasks == 0)
        diag_error(s->d, model_name, "model '%s' has no task", root->name);
    if (s->m->n_tasks > 32)
        diag_error(s->d, s->task_decls[32]->name_span, "more than 32 tasks");
}

/* input NAME : [F] or [T, F] (a window of T time steps of F features). */
static void check_input(Sema *s)
{
    Model *m = s->m;
    m->input_name = sema_strdup(s->input ? s->input->name : "x");
    m->input.rank = 1;
    m->input.dim[0] = 1;
    if (!s->input)
        return;
    const Ast *in = s->input;
    if (in->n_kids > 2) {
        Span sp = {in->span.file, in->kids[0]->span.begin, in->kids[in->n_kids - 1]->span.end};
        diag_error(s->d, sp, "input '%s' has rank %d; an input is [features] or [time, features]", in->name,
                   in->n_kids);
        s->input_bad = true;
    }
    /* past that error, go on with the last two dimensions so the layers are still checked */
    int first = in->n_kids > 2 ? in->n_kids - 2 : 0;
    m->input.rank = in->n_kids - first;
    for (int i = 0; i < m->input.rank; i++) {
        const Ast *dim = in->kids[first + i];
        int64_t v = 1;
        if (!sema_int(s, dim, "an input dimension", &v)) {
            s->input_bad = true;
        } else if (v < 1) {
            diag_error(s->d, dim->span, "input dimension must be at least 1");
            s->input_bad = true;
            v = 1;
        } else if (v > SEMA_MAX_SIZE) {
            diag_error(s->d, dim->span, "input dimension is too large (at most %d)", SEMA_MAX_SIZE);
            s->input_bad = true;
            v = 1;
        }
        m->input.dim[i] = v;
    }
}

/* ---- targets and tasks ---------------------------------------------------------------- */

typedef struct TargetInfo {
    MtlTargetKind kind;
    int64_t width, classes;
    bool ok;
} TargetInfo;

static TargetInfo check_target(Sema *s, const Ast *t)
{
    TargetInfo ti = {MTL_TARGET_REAL, 1, 0, false};
    const Ast *ty = t->a;
    if (!strcmp(ty->name, "real")) {
        if (ty->flag) {
            diag_error(s->d, ty->span, "a vector target is written real[N], not real(N)");
            return ti;
        }
        if (ty->n_kids > 1) {
            diag_error(s->d, ty->span, "a real target has one width: real[N]");
            return ti;
        }
        if (ty->n_kids == 1) {
            int64_t w;
            if (!sema_int(s, ty->kids[0], "the target width", &w))
                return ti;
            if (w < 1) {
                diag_error(s->d, ty->kids[0]->span, "target width must be at least 1");
                return ti;
            }
            if (w > SEMA_MAX_SIZE) {
                diag_error(s->d, ty->kids[0]->span, "target width is too large (at most %d)", SEMA_MAX_SIZE);
                return ti;
            }
            ti.width = w;
        }
        ti.ok = true;
    } else if (!strcmp(ty->name, "class")) {
        if (!ty->flag || ty->n_kids != 1 || ty->kids[0]->name) {
            diag_error(s->d, ty->span, "a class target needs its class count: class(K)");
            return ti;
        }
        int64_t k;
        if (!sema_int(s, ty->kids[0]->a, "the class count", &k))
            return ti;
        if (k < 2) {
            diag_error(s->d, ty->kids[0]->span, "a class target needs at least 2 classes");
            return ti;
        }
        if (k > SEMA_MAX_SIZE) {
            diag_error(s->d, ty->kids[0]->span, "class count is too large (at most %d)", SEMA_MAX_SIZE);
            return ti;
        }
        ti.kind = MTL_TARGET_CLASS;
        ti.width = 1;
        ti.classes = k;
        ti.ok = true;
    } else {
        diag_error(s->d, ty->name_span, "unknown target type '%s' (expected real, real[N] or class(K))",
                   ty->name);
    }
    return ti;
}

/* ---- losses -------------------------------------------------------------------------- */

static const char *const loss_names[] = {"mse", "mae", "huber", "cross_entropy", NULL};

static void check_loss(Sema *s, Task *t, const Ast *loss)
{
    const Ast *call = loss->a;
    int k = -1;
    for (int i = 0; loss_names[i]; i++)
        if (!strcmp(call->name, loss_names[i]))
            k = i;
    if (k < 0) {
        const char *hint = sema_suggest(call->name, loss_names);
        if (hint)
            diag_error(s->d, call->name_span, "unknown loss '%s'; did you mean '%s'?", call->name, hint);
        else
            diag_error(s->d, call->name_span, "unknown loss '%s' (known: mse, mae, huber, cross_entropy)",
                       call->name);
        return;
    }
    t->loss = (MtlLoss)k;
    t->huber_delta = 1.0f;
    t->amnl_cap = 0.0f;
    const Ast *delta = NULL, *amnl = NULL;
    for (int i = 0; i < call->n_kids; i++) {
        const Ast *arg = call->kids[i];
        if (arg->name && !strcmp(arg->name, "amnl")) {
            /* AMNL's failure-biased weighting is defined on squared errors only; another loss
             * would silently change what the book's method means, so it is refused by name. */
            if (k != MTL_LOSS_MSE) {
                diag_error(s->d, arg->name_span, "option 'amnl' applies to loss mse only, not %s",
                           call->name);
                continue;
            }
            if (amnl) {
                diag_error(s->d, arg->name_span, "option 'amnl' of mse is given twice");
                diag_note(s->d, amnl->span, "first given here");
                continue;
            }
            amnl = arg;
            double v;
            /* sema_number already refuses what a float cannot hold (so the cap is finite) */
            if (sema_number(s, arg->a, "amnl cap", &v)) {
                if (!(v > 0))
                    diag_error(s->d, arg->a->span, "amnl cap must be > 0 (the RUL cap, e.g. 125), got %s",
                               arg->a->name);
                else
                    t->amnl_cap = (float)v;
            }
        } else if (k == MTL_LOSS_MSE) {
            diag_error(s->d, arg->name ? arg->name_span : arg->span, "mse takes one option, amnl = R");
        } else if (k == MTL_LOSS_HUBER && arg->name && !strcmp(arg->name, "delta")) {
            if (delta) {
                diag_error(s->d, arg->name_span, "option 'delta' of huber is given twice");
                diag_note(s->d, delta->span, "first given here");
                continue;
            }
            delta = arg;
            double v;
            if (sema_number(s, arg->a, "huber delta", &v)) {
                if (!(v > 0))
                    diag_error(s->d, arg->a->span, "huber delta must be > 0");
                t->huber_delta = (float)v;
            }
        } else if (k == MTL_LOSS_HUBER) {
            diag_error(s->d, arg->name ? arg->name_span : arg->span,
                       "huber takes one option, delta = X");
        } else {
            diag_error(s->d, arg->span, "loss %s takes no options", call->name);
        }
    }
}

/* Where the head's output width was set, unless that is the layer the error points at. */
static void width_note(Sema *s, const Task *t)
{
    const Block *b = &s->m->blocks[t->block];
    Span from = s->block_width_from[t->block];
    if (b->n_layers && from.begin == b->layers[b->n_layers - 1].span.begin)
        return;
    diag_note(s->d, from, "the width %lld comes from here", (long long)t->out_width);
}

static Span head_error_span(const Sema *s, const Task *t)
{
    const Block *b = &s->m->blocks[t->block];
    return b->n_layers ? b->layers[b->n_layers - 1].span : b->span;
}

/* The loss must fit the target's kind, and the head's output width must fit the target. */
static void check_task_shapes(Sema *s, int ti, const Ast *target, const Ast *loss)
{
    Task *t = &s->m->tasks[ti];
    const Block *b = &s->m->blocks[t->block];
    t->out_width = shape_count(&b->out);
    if (b->out.rank != 1 && !s->rank_faked) { /* after a faked rank, it would only repeat that error */
        char sh[64];
        sema_shape_str(&b->out, sh, sizeof sh);
        diag_error(s->d, head_error_span(s, t),
                   "head of task '%s' outputs %s per sample, a sequence, but its %s target needs one vector per sample; add pool(last) or flatten",
                   t->name, sh, t->target_kind == MTL_TARGET_CLASS ? "class" : "real");
        Span from = s->block_width_from[t->block];
        if (!b->n_layers || from.begin != b->layers[b->n_layers - 1].span.begin)
            diag_note(s->d, from, "the shape %s comes from here", sh);
        return;
    }
    if (b->out.rank != 1 || !loss)
        return;
    const Ast *call = loss->a;
    if (t->loss == MTL_LOSS_CROSS_ENTROPY) {
        if (t->target_kind != MTL_TARGET_CLASS) {
            diag_error(s->d, call->name_span, "cross_entropy needs a class(K) target, but '%s' is real",
                       t->name);
            diag_note(s->d, target->a->span, "target '%s' declared here", t->name);
            return;
        }
        if (t->out_width != t->num_classes) {
            diag_error(s->d, head_error_span(s, t),
                       "head of task '%s' outputs %lld values per sample, but cross_entropy on class(%lld) needs %lld logits",
                       t->name, (long long)t->out_width, (long long)t->num_classes,
                       (long long)t->num_classes);
            width_note(s, t);
            diag_note(s->d, target->a->span, "target '%s' declared here", t->name);
        }
    } else {
        if (t->target_kind != MTL_TARGET_REAL) {
            diag_error(s->d, call->name_span,
                       "%s is a regression loss and needs a real target, but '%s' is class(%lld)",
                       call->name, t->name, (long long)t->num_classes);
            diag_note(s->d, target->a->span, "target '%s' declared here", t->name);
            return;
        }
        /* AMNL weights a sample by its own target (its remaining life); a vector target has no
         * single value to weight by, so the option is limited to one value per sample. */
        if (t->amnl_cap > 0 && t->target_width != 1) {
            const Ast *opt = NULL;
            for (int i = 0; i < call->n_kids && !opt; i++)
                if (call->kids[i]->name && !strcmp(call->kids[i]->name, "amnl"))
                    opt = call->kids[i];
            diag_error(s->d, opt ? opt->name_span : call->name_span,
                       "amnl weights each sample by its one target value, but '%s' is real[%lld]; use a real target of width 1",
                       t->name, (long long)t->target_width);
            diag_note(s->d, target->a->span, "target '%s' declared here", t->name);
        }
        if (t->out_width != t->target_width) {
            diag_error(s->d, head_error_span(s, t),
                       "head of task '%s' outputs %lld values per sample, but its target has %lld",
                       t->name, (long long)t->out_width, (long long)t->target_width);
            width_note(s, t);
            diag_note(s->d, target->a->span, "target '%s' declared here", t->name);
        }
    }
}

static const Ast *find_target(Sema *s, const char *name)
{
    for (int i = 0; i < s->n_targets; i++)
        if (!strcmp(s->targets[i]->name, name))
            return s->targets[i];
    return NULL;
}

static void build_blocks(Sema *s)
{
    Model *m = s->m;
    m->n_blocks = 1 + m->n_tasks;
    m->blocks = calloc((size_t)m->n_blocks, sizeof *m->blocks);
    m->tasks = calloc((size_t)(m->n_tasks ? m->n_tasks : 1), sizeof *m->tasks);
    s->block_width_from = calloc((size_t)m->n_blocks, sizeof *s->block_width_from);
    s->block_missing = calloc((size_t)m->n_blocks, sizeof *s->block_missing);
    s->target_bad = calloc((size_t)m->n_blocks, sizeof *s->target_bad);
    if (!m->blocks || !m->tasks || !s->block_width_from || !s->block_missing || !s->target_bad)
        abort();

    Block *tb = &m->blocks[0];
    tb->name = sema_strdup(s->trunk && s->trunk->name ? s->trunk->name : "trunk");
    tb->prefix = sema_strdup(tb->name);
    tb->is_trunk = true;
    tb->task = -1;
    tb->span = s->trunk ? s->trunk->span : s->root->name_span;
    s->block_missing[0] = !s->trunk;
    sema_build_block(s, 0, s->trunk, m->input, s->input ? s->input->span : s->root->name_span);

    for (int ti = 0; ti < m->n_tasks; ti++) {
        const Ast *td = s->task_decls[ti];
        Task *t = &m->tasks[ti];
        Block *b = &m->blocks[1 + ti];
        t->name = sema_strdup(td->name);
        t->span = td->span;
        t->block = 1 + ti;
        t->weight = 1.0f;
        t->huber_delta = 1.0f;
        t->bind = sema_strdup(td->name);
        b->name = sema_strdup(td->name);
        b->prefix = sema_path(td->name, "head");
        b->task = ti;
        b->span = td->span;

        const Ast *target = find_target(s, td->name);
        TargetInfo info = {MTL_TARGET_REAL, 1, 0, false};
        if (!target) {
            diag_error(s->d, td->name_span, "task '%s' names no declared target (a task is named after its target)",
                       td->name);
        } else {
            info = check_target(s, target);
            s->target_bad[ti] = !info.ok;
            t->target_span = target->span;
        }
        t->target_kind = info.kind;
        t->target_width = info.width;
        t->num_classes = info.classes;

        const Ast *head = NULL, *loss = NULL;
        for (int i = 0; i < td->n_kids; i++) {
            const Ast *it = td->kids[i];
            const Ast **slot = it->kind == AST_HEAD ? &head : &loss;
            if (*slot) {
                diag_error(s->d, it->span, "task '%s' has a second %s", td->name,
                           it->kind == AST_HEAD ? "head" : "loss");
                diag_note(s->d, (*slot)->span, "first given here");
            } else {
                *slot = it;
            }
        }
        s->block_missing[1 + ti] = !head;
        if (!head)
            diag_error(s->d, td->name_span, "task '%s' has no head (add `head { dense(N) }`)", td->name);
        else
            b->span = head->span;
        if (!loss)
            diag_error(s->d, td->name_span, "task '%s' has no loss (add `loss mse` or `loss cross_entropy`)",
                       td->name);
        else
            check_loss(s, t, loss);
        sema_build_block(s, 1 + ti, head, m->blocks[0].out, s->block_width_from[0]);
        if (target && info.ok && head)
            check_task_shapes(s, ti, target, loss);
        else
            t->out_width = shape_count(&b->out);
    }
    /* every target needs a task */
    for (int i = 0; i < s->n_targets; i++) {
        bool used = false;
        for (int ti = 0; ti < m->n_tasks; ti++)
            used |= !strcmp(s->task_decls[ti]->name, s->targets[i]->name);
        if (!used) {
            diag_error(s->d, s->targets[i]->name_span, "target '%s' has no task (add `task %s { ... }`)",
                       s->targets[i]->name, s->targets[i]->name);
        }
    }
}

/* ---- balance ------------------------------------------------------------------------- */

/* The balance methods and their options: name, range, integer or not (BOOK.md section 4). */
typedef struct BalanceOption {
    const char *name;
    double lo, hi;
    bool lo_open, integer;
    const char *meaning;
} BalanceOption;

static const BalanceOption gaba_options[] = {
    {"beta", 0, 1, false, false, "EMA factor of the task weights, in [0, 1)"},
    {"floor", 0, 0.5, false, false, "smallest weight before renormalising, in [0, 1/K]"},
    {"warmup", 0, 1e9, false, true, "steps with equal weights"},
    {"every", 1, 1e6, false, true, "measure the per-task gradient norms every N steps"},
    {NULL, 0, 0, false, false, NULL},
};
static const BalanceOption uncertainty_options[] = {
    {"lr", 0, 1e3, true, false, "learning rate of the log-variances (AdamW group 'balance')"},
    {"weight_decay", 0, 1e3, false, false, "weight decay of the log-variances"},
    {NULL, 0, 0, false, false, NULL},
};
static const BalanceOption gradnorm_options[] = {
    {"alpha", 0, 100, false, false, "asymmetry alpha"},
    {"lr", 0, 1e3, true, false, "learning rate of the task weights (Adam)"},
    {"every", 1, 1e6, false, true, "update the weights every N steps"},
    {NULL, 0, 0, false, false, NULL},
};
static const BalanceOption dwa_options[] = {
    {"temperature", 0, 1e6, true, false, "softmax temperature T"},
    {NULL, 0, 0, false, false, NULL},
};
static const BalanceOption no_options[] = {{NULL, 0, 0, false, false, NULL}};

static const struct {
    const char *name;
    const BalanceOption *options;
} balance_methods[] = {
    {"gaba", gaba_options},         {"grace", gaba_options}, {"uncertainty", uncertainty_options},
    {"gradnorm", gradnorm_options}, {"dwa", dwa_options},    {"pcgrad", no_options},
};

/* `norms = shared_params` (default: each task's gradient norm over all shared parameters) or
 * `norms = trunk_output` (the cheap variant: the norm of each task's gradient at the trunk's
 * output, which needs only the heads' backward pass per task) */
static void check_balance_norms(Sema *s, const Ast *call, const Ast *arg)
{
    const Ast *v = arg->a;
    if (v->kind != AST_PATH || (strcmp(v->name, "shared_params") && strcmp(v->name, "trunk_output"))) {
        diag_error(s->d, v->span, "norms of balance %s must be shared_params (each task's gradient over "
                   "the shared parameters) or trunk_output (each task's gradient at the trunk's output), "
                   "got %s", call->name, v->name ? v->name : "a value");
        return;
    }
    s->m->balance.norms_on_output = !strcmp(v->name, "trunk_output");
}

/* `balance gaba(beta = 0.99, ...)` and the other learned / measured methods. */
static void check_balance_method(Sema *s, const Ast *call, const BalanceOption *opts)
{
    Balance *b = &s->m->balance;
    b->method = sema_strdup(call->name);
    bool norms_seen = false;
    for (int i = 0; i < call->n_kids; i++) {
        const Ast *arg = call->kids[i];
        if (!arg->name) {
            diag_error(s->d, arg->span, "options of balance %s are written NAME = VALUE", call->name);
            continue;
        }
        bool takes_norms = opts == gaba_options || opts == gradnorm_options;
        if (takes_norms && !strcmp(arg->name, "norms")) {
            if (norms_seen)
                diag_error(s->d, arg->name_span, "option 'norms' is given twice");
            else
                check_balance_norms(s, call, arg);
            norms_seen = true;
            continue;
        }
        int o = -1;
        for (int q = 0; opts[q].name; q++)
            if (!strcmp(opts[q].name, arg->name))
                o = q;
        if (o < 0) {
            char known[160] = "";
            size_t at = 0;
            for (int q = 0; opts[q].name && at < sizeof known; q++)
                at += (size_t)snprintf(known + at, sizeof known - at, "%s%s", q ? ", " : "", opts[q].name);
            if (takes_norms && at < sizeof known)
                snprintf(known + at, sizeof known - at, ", norms");
            bool task = false;
            for (int k = 0; k < s->m->n_tasks; k++)
                task = task || !strcmp(s->m->tasks[k].name, arg->name);
            if (task)
                diag_error(s->d, arg->name_span, "balance %s learns the task weights; per-task weights "
                           "are given only with 'fixed'", call->name);
            else if (opts[0].name)
                diag_error(s->d, arg->name_span, "unknown option '%s' of balance %s (known: %s)", arg->name,
                           call->name, known);
            else
                diag_error(s->d, arg->name_span, "balance %s takes no options", call->name);
            continue;
        }
        bool twice = false;
        for (int q = 0; q < b->n_options; q++)
            twice = twice || !strcmp(b->option[q], arg->name);
        if (twice) {
            diag_error(s->d, arg->name_span, "option '%s' is given twice", arg->name);
            continue;
        }
        double x;
        if (opts[o].integer) {
            int64_t n;
            if (!sema_int(s, arg->a, arg->name, &n))
                continue;
            x = (double)n;
        } else if (!sema_number(s, arg->a, arg->name, &x)) {
            continue;
        }
        bool below = opts[o].lo_open ? !(x > opts[o].lo) : !(x >= opts[o].lo);
        bool above = !strcmp(arg->name, "beta") ? !sema_below_one(x) : !(x <= opts[o].hi);
        if (!opts[o].integer && x != 0 && (float)x == 0)
            below = true; /* the trainer's float32 would read 0 */
        if (!strcmp(arg->name, "floor") && s->m->n_tasks > 0 && x * s->m->n_tasks > 1.0)
            above = true;
        if (below || above) {
            diag_error(s->d, arg->a->span, "%s of balance %s is out of range: %s (%s), got %s", arg->name,
                       call->name, opts[o].meaning, opts[o].integer ? "an integer" : "a number", arg->a->name);
            continue;
        }
        if (b->n_options < BALANCE_MAX_OPTIONS) {
            b->option[b->n_options] = sema_strdup(arg->name);
            b->value[b->n_options++] = x;
        }
    }
    if (!strcmp(call->name, "grace")) {
        /* GRACE = GABA's weights on AMNL's failure-biased regression loss (BOOK.md section 4) */
        bool amnl = false;
        for (int k = 0; k < s->m->n_tasks; k++)
            amnl = amnl || s->m->tasks[k].amnl_cap > 0;
        if (!amnl)
            diag_error(s->d, call->name_span, "balance grace applies GABA's weights to AMNL's weighted "
                       "MSE, but no task uses it: write the regression loss as `loss mse(amnl = 125)` "
                       "(or use balance gaba)");
    }
    if (s->m->n_tasks > 16)
        diag_error(s->d, call->name_span, "balance %s handles at most 16 tasks, the model has %d", call->name,
                   s->m->n_tasks);
    else if (s->m->n_tasks < 2 && strcmp(call->name, "uncertainty") != 0)
        diag_warning(s->d, call->name_span, "balance %s with one task: its weight is always 1", call->name);
}

static void check_balance(Sema *s)
{
    Model *m = s->m;
    if (!s->balance)
        return;
    const Ast *call = s->balance->a;
    for (size_t i = 0; i < sizeof balance_methods / sizeof balance_methods[0]; i++)
        if (!strcmp(call->name, balance_methods[i].name)) {
            check_balance_method(s, call, balance_methods[i].options);
            return;
        }
    if (strcmp(call->name, "fixed") != 0) {
        diag_error(s->d, call->name_span, "unknown balance method '%s' (known: fixed, gaba, grace, "
                                          "uncertainty, gradnorm, dwa, pcgrad)", call->name);
        return;
    }
    const Ast **given = calloc((size_t)(m->n_tasks ? m->n_tasks : 1), sizeof *given);
    if (!given)
        abort();
    bool any_positive = false;
    int errors_before = s->d->n_errors;
    for (int i = 0; i < call->n_kids; i++) {
        const Ast *arg = call->kids[i];
        if (!arg->name) {
            diag_error(s->d, arg->span, "balance weights are written TASK = W");
            continue;
        }
        int ti = -1;
        for (int k = 0; k < m->n_tasks; k++)
            if (!strcmp(m->tasks[k].name, arg->name))
                ti = k;
        if (ti < 0) {
            diag_error(s->d, arg->name_span, "unknown task '%s' in balance", arg->name);
            continue;
        }
        if (given[ti]) {
            diag_error(s->d, arg->name_span, "task '%s' is weighted twice", arg->name);
            diag_note(s->d, given[ti]->name_span, "first weighted here");
            continue;
        }
        given[ti] = arg;
        double w;
        if (!sema_number(s, arg->a, "a balance weight", &w))
            continue;
        if (!(w >= 0)) {
            diag_error(s->d, arg->a->span, "balance weight of '%s' must be >= 0, got %s", arg->name,
                       arg->a->name);
        } else if (w > 0 && w < FLT_MIN) {
            /* its loss's gradients would be subnormal and flushed to zero: the task would not train */
            diag_error(s->d, arg->a->span, "balance weight of '%s' is below the smallest normal 32-bit "
                       "float (1.2e-38), got %s; use 0 to leave the task out of the loss", arg->name,
                       arg->a->name);
        } else {
            any_positive = any_positive || w > 0;
        }
        m->tasks[ti].weight = (float)w;
    }
    bool all_given = true;
    for (int k = 0; k < m->n_tasks; k++)
        if (!given[k]) {
            diag_error(s->d, call->span, "balance gives no weight to task '%s'", m->tasks[k].name);
            all_given = false;
        }
    if (all_given && !any_positive && s->d->n_errors == errors_before)
        diag_error(s->d, call->span, "every balance weight is 0: no task would train; give at least one "
                   "task a weight > 0");
    free(given);
}

/* ---- data binding -------------------------------------------------------------------- */

static const char *const cmapss_keys[] = {"train", "test", "rul", "features", "rul_cap",
                                          "health_thresholds", "validation", "window", "stride",
                                          "conditions", "synthetic_conditions", "synthetic_fault_modes",
                                          NULL};
static const char *const csv_keys[] = {"train", "test", "inputs", "group", "validation", "window", "stride",
                                       NULL};
static const char *const default_features[] = {"setting1", "setting2", "setting3", "s2", "s3", "s4",
                                               "s7", "s8", "s9", "s11", "s12", "s13", "s14", "s15",
                                               "s17", "s20", "s21", NULL};

static bool valid_feature(const char *f)
{
    if (!strncmp(f, "setting", 7))
        return f[7] >= '1' && f[7] <= '3' && f[8] == '\0';
    if (f[0] == 's' && f[1] >= '1' && f[1] <= '9') {
        char *end;
        long v = strtol(f + 1, &end, 10);
        return *end == '\0' && v >= 1 && v <= 21;
    }
    return false;
}

/* Items of a tuple or a bare list; a single value is a list of one. */
static const Ast *const *items_of(const Ast *const *vp, int *n)
{
    const Ast *v = *vp;
    if (v->kind == AST_TUPLE || v->kind == AST_LIST) {
        *n = v->n_kids;
        return (const Ast *const *)v->kids;
    }
    *n = 1;
    return vp;
}

static void add_string(char ***arr, int *n, const char *str)
{
    *arr = realloc(*arr, (size_t)(*n + 1) * sizeof **arr);
    if (!*arr)
        abort();
    (*arr)[(*n)++] = sema_strdup(str);
}

static void check_data(Sema *s)
{
    Model *m = s->m;
    DataBinding *db = &m->data;
    db->kind = MTL_DATA_CMAPSS;
    db->rul_cap = 125;
    db->n_thresholds = 2;
    db->thresholds[0] = 80;
    db->thresholds[1] = 30;
    db->validation = 0.2f;
    const Ast *d = s->data;
    const Ast *thresholds_at = NULL;
    /* features per time step: the last input dimension */
    int64_t n_in = m->input.dim[m->input.rank - 1];
    db->window = m->input.rank == 2 ? m->input.dim[0] : 1;
    db->window_stride = 1;
    db->conditions = 1;
    db->synthetic_conditions = 1;
    db->synthetic_fault_modes = 1;
    const Ast **binds = calloc((size_t)(m->n_tasks ? m->n_tasks : 1), sizeof *binds);
    if (!binds)
        abort();
    if (d) {
        bool csv = false, have_inputs = false;
        bool features_bad = false;
        if (!strcmp(d->name, "csv"))
            csv = true;
        else if (strcmp(d->name, "cmapss") != 0) {
            diag_error(s->d, d->name_span, "unknown data kind '%s' (expected cmapss or csv)", d->name);
            free(binds);
            return;
        }
        db->kind = csv ? MTL_DATA_CSV : MTL_DATA_CMAPSS;
        const char *where = csv ? "data csv" : "data cmapss";
        for (int i = 0; i < d->n_kids; i++) {
            const Ast *st = d->kids[i];
            const Ast *v = st->a;
            if (sema_seen(s, (const Ast **)d->kids, i, st))
                continue;
            if (st->b)
                diag_error(s->d, st->b->span, "'except' is only meaningful in a group's params");
            if (st->flag) { /* bind TARGET = field */
                int ti = -1;
                for (int k = 0; k < m->n_tasks; k++)
                    if (!strcmp(m->tasks[k].name, st->name))
                        ti = k;
                if (ti < 0) {
                    diag_error(s->d, st->name_span, "bind names unknown target '%s'", st->name);
                    continue;
                }
                binds[ti] = st;
                if (csv) {
                    sema_column(s, v, "bind", &m->tasks[ti].bind);
                } else if (v->kind == AST_PATH && (!strcmp(v->name, "rul") || !strcmp(v->name, "health"))) {
                    free(m->tasks[ti].bind);
                    m->tasks[ti].bind = sema_strdup(v->name);
                } else {
                    diag_error(s->d, v->span, "a cmapss target binds to rul or health");
                }
                continue;
            }
            const char *k = st->name;
            double x;
            if (!strcmp(k, "train")) {
                sema_string(s, v, "'train'", &db->train_path);
            } else if (!strcmp(k, "test")) {
                sema_string(s, v, "'test'", &db->test_path);
            } else if (!strcmp(k, "validation")) {
                if (sema_number(s, v, "'validation'", &x)) {
                    if (!sema_below_one(x))
                        diag_error(s->d, v->span, "validation fraction must be in [0, 1)%s",
                                   x >= 0 && x < 1 ? " (as a 32-bit float: this rounds to 1)" : "");
                    db->validation = (float)x;
                }
            } else if (!csv && !strcmp(k, "rul")) {
                sema_string(s, v, "'rul'", &db->rul_path);
            } else if (!csv && !strcmp(k, "rul_cap")) {
                if (sema_number(s, v, "'rul_cap'", &x)) {
                    if (!(x > 0))
                        diag_error(s->d, v->span, "rul_cap must be > 0");
                    db->rul_cap = (float)x;
                }
            } else if (!csv && !strcmp(k, "health_thresholds")) {
                int n;
                const Ast *const *it = items_of(&v, &n);
                thresholds_at = st;
                if (n < 1 || n > 8) {
                    diag_error(s->d, v->span, "health_thresholds needs 1 to 8 values");
                    continue;
                }
                db->n_thresholds = n;
                for (int j = 0; j < n; j++) {
                    if (!sema_number(s, it[j], "a health threshold", &x))
                        break;
                    db->thresholds[j] = (float)x;
                    if (j > 0 && !(db->thresholds[j] < db->thresholds[j - 1])) {
                        diag_error(s->d, it[j]->span, "health thresholds must be strictly descending");
                        break;
                    }
                }
            } else if (!csv && !strcmp(k, "features")) {
                if (v->kind == AST_PATH && !strcmp(v->name, "default"))
                    continue;
                int n;
                const Ast *const *it = items_of(&v, &n);
                for (int j = 0; j < n; j++) {
                    if (it[j]->kind != AST_PATH && it[j]->kind != AST_STRING) {
                        diag_error(s->d, it[j]->span, "a feature is a column name such as s2 or setting1");
                        continue;
                    }
                    if (!valid_feature(it[j]->name)) {
                        features_bad = true;
                        diag_error(s->d, it[j]->span,
                                   "unknown C-MAPSS feature '%s' (expected setting1..setting3 or s1..s21)",
                                   it[j]->name);
                        continue;
                    }
                    int first = -1;
                    for (int q = 0; q < j && first < 0; q++)
                        if ((it[q]->kind == AST_PATH || it[q]->kind == AST_STRING) &&
                            !strcmp(it[q]->name, it[j]->name))
                            first = q;
                    if (first >= 0) {
                        /* the count is then off by the duplicates: report only them */
                        features_bad = true;
                        diag_error(s->d, it[j]->span, "feature '%s' is listed twice", it[j]->name);
                        diag_note(s->d, it[first]->span, "first listed here");
                        continue;
                    }
                    add_string(&db->features, &db->n_features, it[j]->name);
                }
            } else if (csv && !strcmp(k, "inputs")) {
                have_inputs = true;
                int n;
                const Ast *const *it = items_of(&v, &n);
                bool dup = false;
                for (int j = 0; j < n; j++) {
                    if (it[j]->kind != AST_STRING) {
                        diag_error(s->d, it[j]->span, "csv inputs are quoted column names");
                        continue;
                    }
                    if (it[j]->name[0] == '\0') {
                        diag_error(s->d, it[j]->span, "csv inputs name an empty column (\"\" is not a column name)");
                        continue;
                    }
                    int first = -1;
                    for (int q = 0; q < j && first < 0; q++)
                        if (it[q]->kind == AST_STRING && !strcmp(it[q]->name, it[j]->name))
                            first = q;
                    if (first >= 0) {
                        dup = true;
                        diag_error(s->d, it[j]->span, "column '%s' is listed twice", it[j]->name);
                        diag_note(s->d, it[first]->span, "first listed here");
                        continue;
                    }
                    add_string(&db->input_columns, &db->n_input_columns, it[j]->name);
                }
                if (n != n_in && !dup && s->input && !s->input_bad)
                    diag_error(s->d, v->span, "csv inputs name %d columns but input '%s' has %lld features",
                               n, m->input_name, (long long)n_in);
            } else if (!strcmp(k, "window") || !strcmp(k, "stride")) {
                int64_t n;
                char what[32];
                snprintf(what, sizeof what, "'%s'", k);
                if (!sema_int(s, v, what, &n))
                    continue;
                if (n < 1 || n > SEMA_MAX_SIZE) {
                    diag_error(s->d, v->span, "%s must be between 1 and %d, got %s", k, SEMA_MAX_SIZE, v->name);
                    continue;
                }
                if (k[0] == 's') {
                    db->window_stride = n;
                    continue;
                }
                if (!s->input || s->input_bad)
                    continue;
                char sh[64];
                sema_shape_str(&m->input, sh, sizeof sh);
                if (m->input.rank == 1 && n > 1) {
                    diag_error(s->d, v->span,
                               "window = %lld needs a [time, features] input, but input '%s' is %s; declare it [%lld, %lld]",
                               (long long)n, m->input_name, sh, (long long)n, (long long)n_in);
                    diag_note(s->d, s->input->span, "input '%s' declared here", m->input_name);
                } else if (m->input.rank == 2 && n != m->input.dim[0]) {
                    diag_error(s->d, v->span, "window = %lld, but input '%s' is %s: the window must equal its time dimension %lld",
                               (long long)n, m->input_name, sh, (long long)m->input.dim[0]);
                    diag_note(s->d, s->input->span, "input '%s' declared here", m->input_name);
                } else {
                    db->window = n;
                }
            } else if (!csv && (!strcmp(k, "conditions") || !strcmp(k, "synthetic_conditions") ||
                                !strcmp(k, "synthetic_fault_modes"))) {
                /* conditions: k of the per-condition normalisation; the others shape the
                 * synthetic fleet (FD002 has six operating points, FD003 two fault modes) */
                int64_t n;
                int hi = k[0] == 'c' ? 64 : !strcmp(k, "synthetic_conditions") ? 6 : 2;
                char what[40];
                snprintf(what, sizeof what, "'%s'", k);
                if (!sema_int(s, v, what, &n))
                    continue;
                if (n < 1 || n > hi) {
                    diag_error(s->d, v->span, "%s must be between 1 and %d, got %s", k, hi, v->name);
                    continue;
                }
                if (k[0] == 'c')
                    db->conditions = (int)n;
                else if (!strcmp(k, "synthetic_conditions"))
                    db->synthetic_conditions = (int)n;
                else
                    db->synthetic_fault_modes = (int)n;
            } else if (csv && !strcmp(k, "conditions")) {
                diag_error(s->d, st->name_span,
                           "'conditions' needs the operating settings of data cmapss; csv inputs are "
                           "normalised per column");
            } else if (csv && !strcmp(k, "group")) {
                if (!sema_column(s, v, "'group'", &db->group_column)) {
                    free(db->group_column);
                    db->group_column = NULL;
                }
            } else {
                unknown_key(s, st, where, csv ? csv_keys : cmapss_keys);
            }
        }
        if (features_bad)
            s->input_bad = true; /* the feature count is unknown; do not compare it */
        if (csv && !have_inputs)
            diag_error(s->d, d->name_span, "data csv needs inputs = (\"column\", ...)");
    }
    if (db->kind == MTL_DATA_CMAPSS) {
        int64_t nfeat = db->n_features ? db->n_features : 17;
        if (db->n_features == 0) {
            for (int j = 0; default_features[j]; j++)
                add_string(&db->features, &db->n_features, default_features[j]);
        }
        if (s->input && !s->input_bad && nfeat != n_in)
            diag_error(s->d, s->input->span, "input '%s' has %lld features but the cmapss data gives %lld",
                       m->input_name, (long long)n_in, (long long)nfeat);
        for (int ti = 0; ti < m->n_tasks; ti++) {
            Task *t = &m->tasks[ti];
            const Ast *target = find_target(s, t->name);
            if (!target || s->target_bad[ti])
                continue;
            Span at = binds[ti] ? binds[ti]->span : target->name_span;
            if (!strcmp(t->bind, "rul")) {
                if (t->target_kind != MTL_TARGET_REAL || t->target_width != 1)
                    diag_error(s->d, at, "target '%s' binds to cmapss rul, which is real (one value)", t->name);
            } else if (!strcmp(t->bind, "health")) {
                int64_t k = db->n_thresholds + 1;
                if (t->target_kind != MTL_TARGET_CLASS) {
                    diag_error(s->d, at, "target '%s' binds to cmapss health, which is class(%lld)", t->name,
                               (long long)k);
                } else if (t->num_classes != k) {
                    diag_error(s->d, target->a->span,
                               "target '%s' has %lld classes, but cmapss health has %lld (%d thresholds + 1)",
                               t->name, (long long)t->num_classes, (long long)k, db->n_thresholds);
                    if (thresholds_at)
                        diag_note(s->d, thresholds_at->span, "thresholds set here");
                }
            } else if (!binds[ti]) {
                diag_error(s->d, target->name_span,
                           "target '%s' is not a cmapss field; add `bind %s = rul` or `bind %s = health` to the data block",
                           t->name, t->name, t->name);
            }
        }
    }
    free(binds);
}

/* ---- train --------------------------------------------------------------------------- */

/* The most time steps any sequence in a layer list has (its inputs and outputs). */
static int64_t longest_in(const Layer *layers, int n)
{
    int64_t best = 1;
    for (int i = 0; i < n; i++) {
        const Layer *L = &layers[i];
        if (L->in.rank == 2 && L->in.dim[0] > best)
            best = L->in.dim[0];
        if (L->out.rank == 2 && L->out.dim[0] > best)
            best = L->out.dim[0];
        int64_t body = longest_in(L->body, L->n_body);
        if (body > best)
            best = body;
    }
    return best;
}

static int64_t longest_sequence(const Model *m)
{
    int64_t best = m->input.rank == 2 ? m->input.dim[0] : 1;
    for (int b = 0; b < m->n_blocks; b++) {
        int64_t t = longest_in(m->blocks[b].layers, m->blocks[b].n_layers);
        if (t > best)
            best = t;
    }
    return best;
}

/* The protocol settings of a train block: integer or real, and their allowed range. */
static const struct {
    const char *key;
    bool integer;
    double lo, hi;
    bool lo_open, hi_open;
    const char *meaning;
} protocol_keys[TRAIN_N_PROTOCOL] = {
    {"warmup", true, 0, 1e9, false, false, "epochs of linear lr warm-up (0: off)"},
    {"warmup_start", false, 0, 1, true, false, "lr multiplier at the first warm-up epoch"},
    {"plateau_factor", false, 0, 1, true, false, "lr factor of reduce-on-plateau (1: off)"},
    {"plateau_patience", true, 0, 1e9, false, false, "epochs without improvement before a reduction"},
    {"min_lr", false, 0, 1e30, false, false, "floor of the plateau reductions"},
    {"clip_norm", false, 0, 1e30, false, false, "global gradient-norm clipping (0: off)"},
    {"ema", false, 0, 1, false, true, "decay of the weight average (0: off)"},
    {"patience", true, 0, 1e9, false, false, "early-stopping patience in epochs (0: off)"},
    {"seeds", true, 1, MTL_SEED_SWEEP_MAX, false, false, "runs in a seed sweep"},
    {"max_bad_steps", true, 1, 1e9, false, false, "non-finite steps in a row before the run stops"},
    {"select", false, 0, 1, false, false, "model selection on validation or test"},
};

const char *train_protocol_key(int i)
{
    return protocol_keys[i].key;
}

/* One protocol setting; returns false when it was wrong (already reported). */
static bool check_protocol_setting(Sema *s, const Ast *st, const Ast *v, int i)
{
    TrainDefaults *tr = &s->m->train;
    const char *key = protocol_keys[i].key;
    if (!strcmp(key, "select")) {
        if (v->kind == AST_PATH && (!strcmp(v->name, "validation") || !strcmp(v->name, "test"))) {
            tr->has[i] = true;
            tr->value[i] = !strcmp(v->name, "test");
            return true;
        }
        diag_error(s->d, v->span, "select must be 'validation' or 'test' (the book's protocol: "
                                  "model selection on the test set)");
        return false;
    }
    (void)st;
    double x;
    char what[48];
    snprintf(what, sizeof what, "'%s'", key);
    if (protocol_keys[i].integer) {
        int64_t n;
        if (!sema_int(s, v, what, &n))
            return false;
        x = (double)n;
    } else if (!sema_number(s, v, what, &x)) {
        return false;
    }
    double lo = protocol_keys[i].lo, hi = protocol_keys[i].hi;
    /* the trainer holds these as float32: the range must hold after rounding too
     * (ema = 0.99999999 rounds to 1; 1e-50 rounds to 0, which would mean "off") */
    float f = (float)x;
    bool below = protocol_keys[i].lo_open ? !(x > lo && f > (float)lo) : !(x >= lo);
    bool above = protocol_keys[i].hi_open ? !(x < hi && f < (float)hi) : !(x <= hi);
    if (!protocol_keys[i].integer && x != 0 && f == 0)
        below = true;
    if (!protocol_keys[i].integer && !protocol_keys[i].hi_open && hi == 1 && x < 1 && f == 1.0f) {
        /* plateau_factor, warmup_start: 1 means "off", which 0.99999999 would silently become */
        diag_error(s->d, v->span, "%s rounds to 1 as a 32-bit float (%s); write 1 if that "
                   "is meant, got %s", key, protocol_keys[i].meaning, v->name);
        return false;
    }
    if (below || above) {
        if (protocol_keys[i].integer)
            diag_error(s->d, v->span, "%s must be an integer from %lld to %lld (%s), got %s", key,
                       (long long)lo, (long long)hi, protocol_keys[i].meaning, v->name);
        else
            diag_error(s->d, v->span, "%s must be in %s%g, %g%s (%s), got %s", key,
                       protocol_keys[i].lo_open ? "(" : "[", lo, hi, protocol_keys[i].hi_open ? ")" : "]",
                       protocol_keys[i].meaning, v->name);
        return false;
    }
    tr->has[i] = true;
    tr->value[i] = x;
    return true;
}

static void check_train(Sema *s)
{
    static const char *const keys[] = {"epochs", "batch", "seed", "lr", "warmup", "warmup_start",
                                       "plateau_factor", "plateau_patience", "min_lr", "clip_norm",
                                       "ema", "patience", "seeds", "max_bad_steps", "select", NULL};
    TrainDefaults *tr = &s->m->train;
    tr->epochs = 10;
    tr->batch = 32;
    tr->seed = 0;
    tr->lr = 0;
    if (!s->train)
        return;
    for (int i = 0; i < s->train->n_kids; i++) {
        const Ast *st = s->train->kids[i];
        const Ast *v = st->a;
        if (sema_seen(s, (const Ast **)s->train->kids, i, st))
            continue;
        if (st->flag || st->b) {
            diag_error(s->d, st->span, "train settings are written KEY = VALUE");
            continue;
        }
        int64_t n;
        double x;
        if (!strcmp(st->name, "epochs")) {
            if (!sema_int(s, v, "'epochs'", &n))
                continue;
            if (n < 1 || n > 1000000000) {
                diag_error(s->d, v->span, "epochs must be between 1 and 1000000000");
                continue;
            }
            tr->epochs = (int)n;
        } else if (!strcmp(st->name, "batch")) {
            if (!sema_int(s, v, "'batch'", &n))
                continue;
            if (n < 1 || n > SEMA_MAX_SIZE) {
                diag_error(s->d, v->span, "batch must be between 1 and %d, got %s", SEMA_MAX_SIZE, v->name);
                continue;
            }
            /* a matrix product over a sequence has batch · time rows, a 32-bit count in cblas_sgemm */
            int64_t steps = longest_sequence(s->m);
            if (n * steps > INT32_MAX) {
                diag_error(s->d, v->span,
                           "batch %lld times %lld time steps is %lld rows, more than a matrix product can take (2147483647)",
                           (long long)n, (long long)steps, (long long)(n * steps));
                continue;
            }
            tr->batch = (int)n;
        } else if (!strcmp(st->name, "seed")) {
            if (!sema_int(s, v, "'seed'", &n))
                continue;
            if (n < 0)
                diag_error(s->d, v->span, "seed must be >= 0");
            else if (n > SEMA_INT_LIMIT)
                diag_error(s->d, v->span, "seed is too large (at most %lld)", (long long)SEMA_INT_LIMIT);
            tr->seed = (uint64_t)n;
        } else if (!strcmp(st->name, "lr")) {
            if (!sema_number(s, v, "'lr'", &x))
                continue;
            if (!(x > 0))
                diag_error(s->d, v->span, "lr must be > 0, got %s", v->name);
            tr->lr = (float)x;
        } else {
            int p = -1;
            for (int q = 0; q < TRAIN_N_PROTOCOL; q++)
                if (!strcmp(st->name, protocol_keys[q].key))
                    p = q;
            if (p >= 0) {
                check_protocol_setting(s, st, v, p);
                continue;
            }
            unknown_key(s, st, "train", keys);
        }
    }
}

/* ---- masks --------------------------------------------------------------------------- */

/* Which tasks' gradients reach each parameter: a task with weight 0 reaches nothing;
 * the trunk is reached by every weighted task, a head only by its own task. */
static void assign_masks(Sema *s)
{
    Model *m = s->m;
    if (m->n_tasks > 32)
        return; /* already an error; a mask has one bit per task */
    uint32_t all = 0;
    for (int k = 0; k < m->n_tasks; k++)
        if (m->tasks[k].weight > 0)
            all |= 1u << k;
    for (int i = 0; i < m->n_params; i++) {
        Param *p = &m->params[i];
        const Block *b = &m->blocks[p->block];
        bool frozen = p->group >= 0 && m->groups[p->group].frozen;
        p->trainable = !frozen;
        if (frozen)
            p->task_mask = 0;
        else if (b->is_trunk)
            p->task_mask = all;
        else
            p->task_mask = all & (1u << b->task);
    }
}

/* norms = trunk_output needs a gradient at the trunk's output: some trunk parameter must train
 * (an empty or frozen trunk has none, and the trainer would have nothing to measure). */
static void check_norms_reach_trunk(Sema *s)
{
    const Model *m = s->m;
    if (!m->balance.norms_on_output || !s->balance)
        return;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].trainable && m->blocks[m->params[i].block].is_trunk)
            return;
    const Ast *call = s->balance->a, *at = call;
    for (int i = 0; i < call->n_kids; i++)
        if (call->kids[i]->name && !strcmp(call->kids[i]->name, "norms"))
            at = call->kids[i];
    diag_error(s->d, at->span, "norms = trunk_output measures each task's gradient at the trunk's output, "
               "but no gradient reaches it: the trunk has no trainable parameters (it is empty or its "
               "group is frozen); use norms = shared_params");
}

/* ---- entry --------------------------------------------------------------------------- */

Model *sema_build(Diags *d, const Ast *root);

Model *sema_build(Diags *d, const Ast *root)
{
    int errors_before = d->n_errors;
    Sema s;
    memset(&s, 0, sizeof s);
    s.d = d;
    s.root = root;
    s.m = calloc(1, sizeof *s.m);
    if (!s.m)
        abort();
    s.m->name = sema_strdup(root->name);
    s.m->span = root->span;
    collect(&s);
    check_input(&s);
    build_blocks(&s);
    check_balance(&s);
    check_train(&s);
    sema_check_size(&s);
    check_data(&s);
    sema_groups(&s);
    assign_masks(&s);
    check_norms_reach_trunk(&s);
    free(s.targets);
    free(s.task_decls);
    free(s.param_span);
    free(s.block_width_from);
    free(s.block_missing);
    free(s.target_bad);
    if (d->n_errors > errors_before) {
        model_free(s.m);
        return NULL;
    }
    return s.m;
}
