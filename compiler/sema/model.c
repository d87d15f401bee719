/* The front end's entry points: file -> encoding check -> parse -> sema -> Model,
 * stopping between stages when one reported an error. Also model_free and shape_count.
 * It does not print anything itself except through Diags. */
#include "frontend/ast.h"
#include "sema/model.h"

#include <stdlib.h>

Model *sema_build(Diags *d, const Ast *root);

static Model *load_index(Diags *d, uint32_t file)
{
    if (d->files[file].len == diag_bom_len(&d->files[file])) {
        Span at = {file, 0, 0};
        diag_error(d, at, "empty file: a spec starts with `model NAME { ... }`");
        return NULL;
    }
    if (!lex_check_encoding(d, file))
        return NULL;
    Ast *root = parse_source(d, file);
    if (!root)
        return NULL;
    Model *m = sema_build(d, root);
    ast_free(root);
    return m;
}

Model *model_load(Diags *d, const char *path)
{
    int f = diags_load_file(d, path);
    if (f < 0)
        return NULL;
    return load_index(d, (uint32_t)f);
}

Model *model_load_text(Diags *d, const char *path, const char *text, size_t len)
{
    return load_index(d, diags_add_source(d, path, text, len));
}

int64_t shape_count(const Shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dim[i];
    return n;
}

/* A layer list and the bodies inside it (nesting is bounded by the parser's depth limit). */
static void free_layers(Layer *layers, int n)
{
    for (int l = 0; l < n; l++) {
        free(layers[l].path);
        free_layers(layers[l].body, layers[l].n_body);
    }
    free(layers);
}

void model_free(Model *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->input_name);
    free(m->balance.method);
    for (int i = 0; i < m->balance.n_options; i++)
        free(m->balance.option[i]);
    for (int b = 0; b < m->n_blocks; b++) {
        free_layers(m->blocks[b].layers, m->blocks[b].n_layers);
        free(m->blocks[b].name);
        free(m->blocks[b].prefix);
    }
    free(m->blocks);
    for (int i = 0; i < m->n_params; i++)
        free(m->params[i].name);
    free(m->params);
    for (int i = 0; i < m->n_buffers; i++)
        free(m->buffers[i].name);
    free(m->buffers);
    for (int i = 0; i < m->n_groups; i++)
        free(m->groups[i].name);
    free(m->groups);
    for (int i = 0; i < m->n_tasks; i++) {
        free(m->tasks[i].name);
        free(m->tasks[i].bind);
    }
    free(m->tasks);
    DataBinding *db = &m->data;
    free(db->train_path);
    free(db->test_path);
    free(db->rul_path);
    for (int i = 0; i < db->n_features; i++)
        free(db->features[i]);
    free(db->features);
    for (int i = 0; i < db->n_input_columns; i++)
        free(db->input_columns[i]);
    free(db->input_columns);
    free(db->group_column);
    free(m);
}
