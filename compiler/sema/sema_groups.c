/* Optimizer parameter groups: settings, selectors and coverage.
 *
 * Every parameter must land in exactly one group (frozen groups count). A parameter in
 * no group is reported at the layer that declares it; one in two groups is reported with
 * notes at both selectors. A selector that matches nothing is an error. Selectors:
 * `all`, `trunk` (or the trunk's name), `TASK` / `TASK.head`, or a quoted glob on paths.
 * It does not decide which tasks reach a parameter (sema.c does, after groups are known).
 */
#include "sema/sema_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Selectors in all groups together (a real optimizer has a handful). */
#define MAX_SELECTORS 1000

static const char *const group_keys[] = {"params", "lr", "weight_decay", "betas", "eps", "frozen", NULL};

static void group_defaults(Group *g)
{
    /* PyTorch torch.optim.AdamW defaults */
    g->lr = 1e-3f;
    g->weight_decay = 1e-2f;
    g->beta1 = 0.9f;
    g->beta2 = 0.999f;
    g->eps = 1e-8f;
    g->frozen = false;
}

/* Marks the parameters one selector picks. Returns 0 (after an error) if it is not a selector,
 * 2 if it names a block whose declaration is missing (already reported: do not pile on), else 1. */
static int select_params(Sema *s, const Ast *sel, bool *mask)
{
    const Model *m = s->m;
    if (sel->kind == AST_STRING) {
        for (int i = 0; i < m->n_params; i++)
            if (sema_glob(sel->name, m->params[i].name))
                mask[i] = true;
        return 1;
    }
    if (sel->kind != AST_PATH) {
        diag_error(s->d, sel->span,
                   "a selector is all, trunk, a task name, TASK.head or a quoted pattern such as \"*.bias\"");
        return 0;
    }
    int block = -2; /* -1: all */
    bool is_trunk = !strcmp(sel->name, "trunk") || !strcmp(sel->name, m->blocks[0].name);
    if (!strcmp(sel->name, "all"))
        block = -1;
    else if (is_trunk) {
        block = 0;
        /* a bare task name that is also the trunk's name (or "trunk") would pick the trunk
         * silently: refuse it and say how to write each meaning */
        for (int t = 0; t < m->n_tasks; t++) {
            if (strcmp(sel->name, m->tasks[t].name) != 0)
                continue;
            /* another way to write the trunk: `trunk`, its own name, or (both being "trunk") a pattern */
            char other[256];
            if (strcmp(sel->name, "trunk") != 0)
                snprintf(other, sizeof other, "trunk");
            else if (strcmp(m->blocks[0].name, "trunk") != 0)
                snprintf(other, sizeof other, "%s", m->blocks[0].name);
            else
                snprintf(other, sizeof other, "\"%s.*\"", m->blocks[0].prefix);
            diag_error(s->d, sel->span,
                       "selector '%s' is ambiguous: it names both the trunk and the head of task '%s'; write `%s` for the trunk or `%s.head` for the head",
                       sel->name, sel->name, other, sel->name);
            if (s->trunk)
                diag_note(s->d, s->trunk->name ? s->trunk->name_span : s->trunk->span, "the trunk is %s here",
                          s->trunk->name ? "named" : "declared");
            diag_note(s->d, s->task_decls[t]->name_span, "task '%s' declared here", sel->name);
            return 0;
        }
    } else {
        for (int t = 0; t < m->n_tasks; t++) {
            const char *tn = m->tasks[t].name;
            size_t n = strlen(tn);
            if (!strncmp(sel->name, tn, n) && (sel->name[n] == '\0' || !strcmp(sel->name + n, ".head")))
                block = m->tasks[t].block;
        }
    }
    if (block == -2) {
        diag_error(s->d, sel->span,
                   "unknown selector '%s' (expected all, trunk, a task name, TASK.head or a quoted pattern)",
                   sel->name);
        return 0;
    }
    for (int i = 0; i < m->n_params; i++)
        if (block == -1 || m->params[i].block == block)
            mask[i] = true;
    return block >= 0 && s->block_missing[block] ? 2 : 1;
}

/* Items of a selector list (a single selector is a list of one). */
static void selectors(Sema *s, const Ast *v, bool *mask, bool *scratch, const char *role)
{
    const Ast *one = v;
    const Ast *const *it = &one;
    int n = 1;
    if (v->kind == AST_LIST || v->kind == AST_TUPLE) {
        it = (const Ast *const *)v->kids;
        n = v->n_kids;
    }
    for (int i = 0; i < n; i++) {
        /* each selector visits every parameter: bound their product (with the tensor limit) */
        if (++s->n_selectors > MAX_SELECTORS) {
            if (s->n_selectors == MAX_SELECTORS + 1)
                diag_error(s->d, it[i]->span, "more than %d parameter selectors in the optimizer", MAX_SELECTORS);
            continue;
        }
        memset(scratch, 0, (size_t)s->m->n_params * sizeof *scratch);
        if (select_params(s, it[i], scratch) != 1)
            continue;
        bool any = false;
        for (int p = 0; p < s->m->n_params; p++) {
            any |= scratch[p];
            mask[p] |= scratch[p];
        }
        if (!any)
            diag_error(s->d, it[i]->span, "%s '%s' matches no parameter", role, it[i]->name);
    }
}

/* "parameter 'a.weight'" or "parameters 'a.weight' and 'a.bias'" for params [p, q). */
static void param_list(const Model *m, int p, int q, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "parameter%s ", q - p > 1 ? "s" : "");
    for (int i = p; i < q && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s'%s'", i == p ? "" : i == q - 1 ? " and " : ", ",
                              m->params[i].name);
}

void sema_groups(Sema *s)
{
    Model *m = s->m;
    int np = m->n_params;
    if (!s->optimizer) {
        m->groups = calloc(1, sizeof *m->groups);
        if (!m->groups)
            abort();
        m->n_groups = 1;
        Group *g = &m->groups[0];
        group_defaults(g);
        g->name = sema_strdup("default");
        g->implicit = true;
        g->span = s->root->name_span;
        for (int i = 0; i < np; i++)
            m->params[i].group = 0;
        return;
    }
    const Ast *opt = s->optimizer;
    if (strcmp(opt->name, "adamw") != 0)
        diag_error(s->d, opt->name_span, "unknown optimizer '%s' (supported: adamw)", opt->name);
    if (opt->n_kids == 0)
        diag_error(s->d, opt->span, "optimizer has no groups (add `group all { params = all }`)");

    m->groups = calloc((size_t)(opt->n_kids ? opt->n_kids : 1), sizeof *m->groups);
    const Ast **owner_sel = calloc((size_t)(np ? np : 1), sizeof *owner_sel);
    bool *mask = calloc((size_t)(np ? np : 1), sizeof *mask);
    bool *except = calloc((size_t)(np ? np : 1), sizeof *except);
    bool *scratch = calloc((size_t)(np ? np : 1), sizeof *scratch);
    if (!m->groups || !owner_sel || !mask || !except || !scratch)
        abort();
    const Ast **decls = calloc((size_t)(opt->n_kids ? opt->n_kids : 1), sizeof *decls);
    if (!decls)
        abort();

    for (int gi = 0; gi < opt->n_kids; gi++) {
        const Ast *gd = opt->kids[gi];
        bool dup = false;
        for (int j = 0; j < m->n_groups && !dup; j++)
            if (!strcmp(decls[j]->name, gd->name)) {
                diag_error(s->d, gd->name_span, "duplicate group '%s'", gd->name);
                diag_note(s->d, decls[j]->name_span, "'%s' first declared here", gd->name);
                dup = true;
            }
        if (dup)
            continue;
        int idx = m->n_groups++;
        decls[idx] = gd;
        Group *g = &m->groups[idx];
        group_defaults(g);
        g->name = sema_strdup(gd->name);
        g->span = gd->span;
        const Ast *params = NULL;
        memset(mask, 0, (size_t)np * sizeof *mask);
        memset(except, 0, (size_t)np * sizeof *except);
        for (int i = 0; i < gd->n_kids; i++) {
            const Ast *st = gd->kids[i];
            const Ast *v = st->a;
            if (sema_seen(s, (const Ast **)gd->kids, i, st))
                continue;
            if (st->flag) {
                diag_error(s->d, st->span, "'bind' belongs in the data block");
                continue;
            }
            if (st->b && strcmp(st->name, "params") != 0)
                diag_error(s->d, st->b->span, "'except' is only meaningful in params");
            double x;
            if (!strcmp(st->name, "params")) {
                params = st;
                selectors(s, v, mask, scratch, "selector");
                if (st->b)
                    selectors(s, st->b, except, scratch, "except selector");
            } else if (!strcmp(st->name, "lr")) {
                if (sema_number(s, v, "'lr'", &x)) {
                    if (!(x > 0))
                        diag_error(s->d, v->span, "lr must be > 0, got %s", v->name);
                    g->lr = (float)x;
                }
            } else if (!strcmp(st->name, "weight_decay")) {
                if (sema_number(s, v, "'weight_decay'", &x)) {
                    if (!(x >= 0))
                        diag_error(s->d, v->span, "weight_decay must be >= 0, got %s", v->name);
                    g->weight_decay = (float)x;
                }
            } else if (!strcmp(st->name, "eps")) {
                if (sema_number(s, v, "'eps'", &x)) {
                    if (!(x > 0))
                        diag_error(s->d, v->span, "eps must be > 0, got %s", v->name);
                    g->eps = (float)x;
                }
            } else if (!strcmp(st->name, "betas")) {
                if (v->kind != AST_TUPLE || v->n_kids != 2) {
                    diag_error(s->d, v->span, "'betas' expects two numbers: (B1, B2)");
                    continue;
                }
                double b[2];
                for (int j = 0; j < 2; j++) {
                    b[j] = j ? 0.999 : 0.9;
                    if (sema_number(s, v->kids[j], "a beta", &b[j]) && !sema_below_one(b[j]))
                        diag_error(s->d, v->kids[j]->span, "betas must be in [0, 1)%s, got %s",
                                   b[j] >= 0 && b[j] < 1 ? " (as a 32-bit float: this rounds to 1)" : "", v->kids[j]->name);
                }
                g->beta1 = (float)b[0];
                g->beta2 = (float)b[1];
            } else if (!strcmp(st->name, "frozen")) {
                sema_bool(s, v, "'frozen'", &g->frozen);
            } else {
                const char *hint = sema_suggest(st->name, group_keys);
                if (hint)
                    diag_error(s->d, st->name_span, "unknown setting '%s' in group '%s'; did you mean '%s'?",
                               st->name, gd->name, hint);
                else
                    diag_error(s->d, st->name_span,
                               "unknown setting '%s' in group '%s' (settings: params, lr, weight_decay, betas, eps, frozen)",
                               st->name, gd->name);
            }
        }
        if (!params) {
            diag_error(s->d, gd->name_span, "group '%s' has no params (e.g. `params = trunk`)", gd->name);
            continue;
        }
        for (int p = 0; p < np; p++) {
            if (!mask[p] || except[p])
                continue;
            Param *pp = &m->params[p];
            if (pp->group < 0) {
                pp->group = idx;
                owner_sel[p] = params;
                continue;
            }
            /* One error per layer and earlier group: "'a.weight' and 'a.bias' are in two groups". */
            int q = p + 1;
            while (q < np && mask[q] && !except[q] && m->params[q].block == pp->block &&
                   m->params[q].layer == pp->layer && m->params[q].group == pp->group)
                q++;
            char names[512];
            param_list(m, p, q, names, sizeof names);
            diag_error(s->d, s->param_span[p], "%s %s in two groups, '%s' and '%s'", names,
                       q - p > 1 ? "are" : "is", m->groups[pp->group].name, g->name);
            diag_note(s->d, owner_sel[p]->span, "group '%s' selects %s here", m->groups[pp->group].name,
                      q - p > 1 ? "them" : "it");
            diag_note(s->d, params->span, "group '%s' selects %s here", g->name, q - p > 1 ? "them" : "it");
            p = q - 1;
        }
    }
    if (m->n_groups > 0) {
        for (int p = 0; p < np; p++) {
            if (m->params[p].group >= 0)
                continue;
            int q = p + 1;
            while (q < np && m->params[q].group < 0 && m->params[q].block == m->params[p].block &&
                   m->params[q].layer == m->params[p].layer)
                q++;
            char names[512];
            param_list(m, p, q, names, sizeof names);
            diag_error(s->d, s->param_span[p], "%s %s in no group", names, q - p > 1 ? "are" : "is");
            diag_note(s->d, opt->name_span, "every parameter must be selected by exactly one group here");
            p = q - 1;
        }
    }
    free(decls);
    free(owner_sel);
    free(mask);
    free(except);
    free(scratch);
}
