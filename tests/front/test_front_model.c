/* cmocka tests of the front end's Model: the reference dual-task MLP (names, shapes, counts,
 * task reach, report totals) and defaults / masks / groups on small in-memory specs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "report/report.h"
#include "sema/model.h"

static Model *load(Diags *d, const char *text)
{
    diags_init(d, stderr);
    return model_load_text(d, "test.mtl", text, strlen(text));
}

static const Param *find(const Model *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name))
            return &m->params[i];
    return NULL;
}

static void test_dual_mlp(void **state)
{
    (void)state;
    Diags d;
    diags_init(&d, stderr);
    Model *m = model_load(&d, MTLC_EXAMPLES_DIR "/dual_mlp.mtl");
    assert_non_null(m);
    assert_int_equal(d.n_errors, 0);
    assert_int_equal(m->n_tasks, 2);
    assert_int_equal(m->n_params, 6);
    static const struct { const char *name; int rank; int64_t d0, d1, count; } want[] = {
        {"shared.0.weight", 2, 32, 17, 544}, {"shared.0.bias", 1, 32, 0, 32},
        {"rul.head.0.weight", 2, 1, 32, 32}, {"rul.head.0.bias", 1, 1, 0, 1},
        {"health.head.0.weight", 2, 3, 32, 96}, {"health.head.0.bias", 1, 3, 0, 3},
    };
    for (size_t i = 0; i < 6; i++) {
        const Param *p = &m->params[i];
        assert_string_equal(p->name, want[i].name);
        assert_int_equal(p->shape.rank, want[i].rank);
        assert_int_equal(p->shape.dim[0], want[i].d0);
        if (want[i].rank == 2)
            assert_int_equal(p->shape.dim[1], want[i].d1);
        assert_int_equal(p->count, want[i].count);
        assert_true(p->trainable);
        assert_int_equal(p->init, MTL_INIT_UNIFORM);
    }
    /* trunk reached by both tasks, each head by its own task only */
    assert_int_equal(find(m, "shared.0.weight")->task_mask, 3);
    assert_int_equal(find(m, "shared.0.bias")->task_mask, 3);
    assert_int_equal(find(m, "rul.head.0.weight")->task_mask, 1);
    assert_int_equal(find(m, "rul.head.0.bias")->task_mask, 1);
    assert_int_equal(find(m, "health.head.0.weight")->task_mask, 2);
    assert_int_equal(find(m, "health.head.0.bias")->task_mask, 2);
    /* PyTorch nn.Linear init bound 1/sqrt(fan_in) */
    assert_float_equal(find(m, "shared.0.weight")->init_bound, 0.242535625, 1e-6);
    assert_float_equal(find(m, "rul.head.0.bias")->init_bound, 0.1767767, 1e-6);

    ReportTotals t;
    report_totals(m, &t);
    assert_int_equal(t.total, 708);
    assert_int_equal(t.trainable, 708);
    assert_int_equal(t.shared, 576);
    assert_int_equal(t.task_specific, 132);
    char pct[16];
    snprintf(pct, sizeof pct, "%.1f", t.shared_percent);
    assert_string_equal(pct, "81.4");
    int64_t block[3] = {0, 0, 0};
    for (int i = 0; i < m->n_params; i++)
        block[m->params[i].block] += m->params[i].count;
    assert_int_equal(block[0], 576);
    assert_int_equal(block[1], 33);
    assert_int_equal(block[2], 99);

    assert_int_equal(m->n_groups, 3);
    assert_string_equal(m->groups[0].name, "shared");
    assert_float_equal(m->groups[0].weight_decay, 1e-4, 1e-9);
    assert_float_equal(m->tasks[0].weight, 0.5, 0);
    assert_int_equal(m->tasks[1].num_classes, 3);
    assert_int_equal(m->tasks[1].loss, MTL_LOSS_CROSS_ENTROPY);
    assert_int_equal(m->train.epochs, 100);
    assert_int_equal(m->train.batch, 256);
    assert_int_equal(m->data.kind, MTL_DATA_CMAPSS);
    assert_int_equal(m->data.n_features, 17);
    assert_string_equal(m->data.features[16], "s21");
    model_free(m);
    diags_free(&d);
}

/* No optimizer, balance, data or train: PyTorch / project defaults. */
static void test_defaults(void **state)
{
    (void)state;
    Diags d;
    Model *m = load(&d, "model M { input x : [17] target rul : real trunk { } task rul { head { dense(1) } loss mse } }");
    assert_non_null(m);
    assert_int_equal(m->n_groups, 1);
    assert_string_equal(m->groups[0].name, "default");
    assert_true(m->groups[0].implicit);
    assert_float_equal(m->groups[0].lr, 1e-3, 1e-9);
    assert_float_equal(m->groups[0].weight_decay, 1e-2, 1e-9);
    assert_float_equal(m->groups[0].beta1, 0.9, 1e-7);
    assert_float_equal(m->groups[0].beta2, 0.999, 1e-7);
    assert_float_equal(m->groups[0].eps, 1e-8, 1e-12);
    assert_string_equal(m->blocks[0].prefix, "trunk");
    assert_string_equal(m->params[0].name, "rul.head.0.weight");
    assert_int_equal(m->params[0].shape.dim[1], 17);
    assert_int_equal(m->train.epochs, 10);
    assert_int_equal(m->train.batch, 32);
    assert_true(m->train.lr <= 0);
    assert_float_equal(m->data.rul_cap, 125, 0);
    assert_int_equal(m->data.n_thresholds, 2);
    assert_float_equal(m->data.validation, 0.2, 1e-7);
    assert_float_equal(m->tasks[0].weight, 1.0, 0);
    assert_string_equal(m->tasks[0].bind, "rul");
    model_free(m);
    diags_free(&d);
}

/* A task of weight 0 reaches nothing; frozen parameters reach nothing and are not trainable. */
static void test_masks(void **state)
{
    (void)state;
    Diags d;
    Model *m = load(&d,
                    "model M { input x : [17] target rul : real target health : class(3)\n"
                    "trunk t { fc: dense(8) tanh dense(4, bias = false) }\n"
                    "task rul { head { dense(1) } loss huber(delta = 2) }\n"
                    "task health { head { dense(3) } loss cross_entropy }\n"
                    "balance fixed(rul = 1, health = 0)\n"
                    "optimizer adamw { group a { params = all except health, \"t.fc.*\" }\n"
                    "  group b { params = health.head; frozen = true }\n"
                    "  group c { params = \"t.fc.*\"; lr = 0.01 } } }");
    assert_non_null(m);
    assert_int_equal(find(m, "t.fc.weight")->task_mask, 1);
    assert_int_equal(find(m, "t.2.weight")->task_mask, 1);
    assert_null(find(m, "t.2.bias"));
    assert_int_equal(find(m, "health.head.0.weight")->task_mask, 0);
    assert_false(find(m, "health.head.0.weight")->trainable);
    assert_int_equal(find(m, "rul.head.0.bias")->task_mask, 1);
    assert_string_equal(m->groups[find(m, "t.fc.bias")->group].name, "c");
    assert_float_equal(m->tasks[0].huber_delta, 2, 0);
    model_free(m);
    diags_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dual_mlp),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_masks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
