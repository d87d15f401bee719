/* cmocka tests of the front end's Model: the reference dual-task MLP (names, shapes, counts,
 * task reach, report totals), the book's DualTaskModel (per-block counts, PyTorch names, inits,
 * buffers), its reduced PyTorch-agreement spec, and defaults / masks / groups on small
 * in-memory specs. */
#include <math.h>
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

/* Parameters of the trunk's top-level layers [first, last] (Param.layer is the top-level layer). */
static int64_t trunk_layers(const Model *m, int first, int last)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].block == 0 && m->params[i].layer >= first && m->params[i].layer <= last)
            n += m->params[i].count;
    return n;
}

static int64_t block_params(const Model *m, int b)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].block == b)
            n += m->params[i].count;
    return n;
}

static void assert_shape2(const Shape *s, int64_t d0, int64_t d1)
{
    assert_int_equal(s->rank, 2);
    assert_int_equal(s->dim[0], d0);
    assert_int_equal(s->dim[1], d1);
}

/* The book's DualTaskModel: the per-block counts of BOOK.md section 3, names, inits, buffers. */
static void test_dual_task(void **state)
{
    (void)state;
    Diags d;
    diags_init(&d, stderr);
    Model *m = model_load(&d, MTLC_EXAMPLES_DIR "/dual_task.mtl");
    assert_non_null(m);
    assert_int_equal(d.n_errors, 0);
    assert_shape2(&m->input, 30, 17);
    const Block *trunk = &m->blocks[0];
    assert_int_equal(trunk->n_layers, 25);
    /* layers: 0-11 CNN, 12 lstm, 13 residual attention, 14 layernorm, 15 pool, 16-24 funnel */
    assert_int_equal(trunk_layers(m, 0, 11), 52928);
    assert_int_equal(trunk_layers(m, 0, 3), 3392);
    assert_int_equal(trunk_layers(m, 4, 7), 24832);
    assert_int_equal(trunk_layers(m, 8, 11), 24704);
    assert_int_equal(trunk_layers(m, 12, 12), 2236416);
    assert_int_equal(trunk_layers(m, 13, 14), 1051648);
    assert_int_equal(trunk_layers(m, 13, 13), 1050624);
    assert_int_equal(trunk_layers(m, 15, 24), 149856);
    assert_int_equal(block_params(m, 1), 4737);
    assert_int_equal(block_params(m, 2), 1635);

    ReportTotals t;
    report_totals(m, &t);
    assert_int_equal(t.total, 3497220);
    assert_int_equal(t.shared, 3490848);
    assert_int_equal(t.task_specific, 6372);
    char pct[16];
    snprintf(pct, sizeof pct, "%.1f", t.shared_percent);
    assert_string_equal(pct, "99.8");

    /* shapes through the trunk */
    assert_shape2(&trunk->layers[0].out, 30, 64);
    assert_shape2(&trunk->layers[12].out, 30, 512);
    assert_shape2(&trunk->layers[14].out, 30, 512);
    assert_int_equal(trunk->layers[15].out.rank, 1);
    assert_int_equal(trunk->layers[15].out.dim[0], 512);
    assert_int_equal(trunk->out.rank, 1);
    assert_int_equal(trunk->out.dim[0], 32);

    /* conv1d: weight [Cout, Cin, K], no bias, U(±1/sqrt(Cin·K)) */
    const Layer *conv = &trunk->layers[0];
    assert_int_equal(conv->kind, LAYER_CONV1D);
    assert_int_equal(conv->kernel, 3);
    assert_int_equal(conv->padding, 1);
    assert_int_equal(conv->stride, 1);
    assert_false(conv->bias);
    assert_int_equal(conv->bias_param, -1);
    assert_int_equal(conv->n_params, 1);
    const Param *cw = &m->params[conv->weight_param];
    assert_string_equal(cw->name, "trunk.0.weight");
    assert_int_equal(cw->shape.rank, 3);
    assert_int_equal(cw->shape.dim[0], 64);
    assert_int_equal(cw->shape.dim[1], 17);
    assert_int_equal(cw->shape.dim[2], 3);
    assert_float_equal(cw->init_bound, 1.0 / sqrt(51.0), 1e-6);

    /* batchnorm: weight ones, bias zeros, buffers running_mean / running_var outside the params */
    const Layer *bn = &trunk->layers[1];
    assert_int_equal(bn->kind, LAYER_BATCHNORM);
    assert_float_equal(bn->eps, 1e-5, 1e-12);
    assert_float_equal(bn->momentum, 0.1, 1e-7);
    assert_int_equal(m->params[bn->weight_param].init, MTL_INIT_ONES);
    assert_int_equal(m->params[bn->bias_param].init, MTL_INIT_ZEROS);
    assert_int_equal(bn->n_buffers, 2);
    assert_int_equal(m->n_buffers, 6);
    const Buffer *rv = &m->buffers[bn->first_buffer + 1];
    assert_string_equal(rv->name, "trunk.1.running_var");
    assert_int_equal(rv->shape.rank, 1);
    assert_int_equal(rv->shape.dim[0], 64);
    assert_int_equal(rv->count, 64);
    assert_int_equal(rv->init, MTL_INIT_ONES);
    assert_string_equal(m->buffers[bn->first_buffer].name, "trunk.1.running_mean");
    assert_int_equal(m->buffers[bn->first_buffer].init, MTL_INIT_ZEROS);
    assert_null(find(m, "trunk.1.running_var"));

    /* lstm: PyTorch names and order, U(±1/sqrt(H)) */
    const Layer *lstm = &trunk->layers[12];
    assert_int_equal(lstm->kind, LAYER_LSTM);
    assert_string_equal(lstm->path, "trunk.lstm");
    assert_int_equal(lstm->units, 256);
    assert_int_equal(lstm->lstm_layers, 2);
    assert_true(lstm->bidirectional);
    assert_float_equal(lstm->p, 0.3, 1e-7);
    assert_int_equal(lstm->n_params, 16);
    assert_string_equal(m->params[lstm->first_param].name, "trunk.lstm.weight_ih_l0");
    assert_string_equal(m->params[lstm->first_param + 4].name, "trunk.lstm.weight_ih_l0_reverse");
    assert_string_equal(m->params[lstm->first_param + 15].name, "trunk.lstm.bias_hh_l1_reverse");
    const Param *wih = find(m, "trunk.lstm.weight_ih_l1_reverse");
    assert_non_null(wih);
    assert_shape2(&wih->shape, 1024, 512);
    assert_shape2(&find(m, "trunk.lstm.weight_ih_l0")->shape, 1024, 64);
    assert_shape2(&find(m, "trunk.lstm.weight_hh_l1")->shape, 1024, 256);
    assert_float_equal(wih->init_bound, 0.0625, 1e-7);

    /* residual { attn: attention(heads = 8) } */
    const Layer *res = &trunk->layers[13];
    assert_int_equal(res->kind, LAYER_RESIDUAL);
    assert_int_equal(res->n_params, 0);
    assert_int_equal(res->n_body, 1);
    const Layer *attn = &res->body[0];
    assert_int_equal(attn->kind, LAYER_ATTENTION);
    assert_string_equal(attn->path, "trunk.13.attn");
    assert_int_equal(attn->heads, 8);
    assert_int_equal(attn->n_params, 4);
    const Param *ipw = find(m, "trunk.13.attn.in_proj_weight");
    assert_non_null(ipw);
    assert_shape2(&ipw->shape, 1536, 512);
    assert_int_equal(ipw->layer, 13);
    assert_float_equal(ipw->init_bound, sqrt(6.0 / 2048.0), 1e-6);
    assert_int_equal(find(m, "trunk.13.attn.in_proj_bias")->init, MTL_INIT_ZEROS);
    assert_shape2(&find(m, "trunk.13.attn.out_proj.weight")->shape, 512, 512);
    assert_int_equal(find(m, "trunk.13.attn.out_proj.bias")->init, MTL_INIT_ZEROS);
    assert_int_equal(trunk->layers[14].kind, LAYER_LAYERNORM);
    assert_int_equal(trunk->layers[15].kind, LAYER_POOL);
    assert_int_equal(trunk->layers[15].pool, POOL_LAST);

    /* every parameter in the trunk is in group shared and reached by both tasks */
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].block == 0) {
            assert_string_equal(m->groups[m->params[i].group].name, "shared");
            assert_int_equal(m->params[i].task_mask, 3);
        }
    assert_int_equal(m->data.window, 30);
    assert_int_equal(m->data.window_stride, 1);
    assert_int_equal(m->train.epochs, 30);
    assert_int_equal(m->train.batch, 256);
    model_free(m);
    diags_free(&d);
}

/* The reduced spec for PyTorch-agreement tests checks cleanly, with windows of 6 csv rows. */
static void test_dual_task_small(void **state)
{
    (void)state;
    Diags d;
    diags_init(&d, stderr);
    Model *m = model_load(&d, MTLC_REFERENCE_SPECS_DIR "/dual_task_small.mtl");
    assert_non_null(m);
    assert_int_equal(m->data.kind, MTL_DATA_CSV);
    assert_int_equal(m->data.n_input_columns, 5);
    assert_int_equal(m->data.window, 6);
    ReportTotals t;
    report_totals(m, &t);
    assert_int_equal(t.total, 1078);
    assert_int_equal(t.shared, 1002);
    assert_shape2(&find(m, "trunk.lstm.weight_ih_l1_reverse")->shape, 12, 6);
    assert_shape2(&find(m, "trunk.10.attn.in_proj_weight")->shape, 18, 6);
    model_free(m);
    diags_free(&d);
}

/* Dense on [T, C] works per step; defaults of the sequence layers; windows default to T;
 * patterns select the new parameters and never buffers. */
static void test_sequence_defaults(void **state)
{
    (void)state;
    Diags d;
    Model *m = load(&d,
                    "model M { input x : [10, 17] target rul : real\n"
                    "trunk { fc: dense(8) conv1d(6) lstm(5) residual { attention(heads = 1) relu }\n"
                    "        batchnorm layernorm flatten }\n"
                    "task rul { head { dense(1) } loss mse }\n"
                    "optimizer adamw { group seq { params = \"trunk.3.*\", \"trunk.2.*\" }\n"
                    "  group rest { params = all except \"trunk.3.*\", \"trunk.2.*\" } } }");
    assert_non_null(m);
    const Block *b = &m->blocks[0];
    assert_shape2(&b->layers[0].out, 10, 8);
    assert_shape2(&find(m, "trunk.fc.weight")->shape, 8, 17);
    assert_int_equal(b->layers[1].kernel, 3);
    assert_int_equal(b->layers[1].padding, 0);
    assert_int_equal(b->layers[1].stride, 1);
    assert_true(b->layers[1].bias);
    assert_shape2(&b->layers[1].out, 8, 6);
    assert_int_equal(b->layers[2].lstm_layers, 1);
    assert_false(b->layers[2].bidirectional);
    assert_float_equal(b->layers[2].p, 0, 0);
    assert_shape2(&b->layers[2].out, 8, 5);
    assert_null(find(m, "trunk.2.weight_ih_l0_reverse"));
    assert_non_null(find(m, "trunk.3.0.in_proj_weight"));
    assert_string_equal(b->layers[3].body[1].path, "trunk.3.1");
    assert_int_equal(b->out.rank, 1);
    assert_int_equal(b->out.dim[0], 40);
    assert_string_equal(m->groups[find(m, "trunk.3.0.out_proj.bias")->group].name, "seq");
    assert_string_equal(m->groups[find(m, "trunk.2.bias_hh_l0")->group].name, "seq");
    assert_string_equal(m->groups[find(m, "trunk.4.weight")->group].name, "rest");
    assert_int_equal(m->n_buffers, 2);
    assert_string_equal(m->buffers[0].name, "trunk.4.running_mean");
    assert_int_equal(m->data.window, 10);
    assert_int_equal(m->data.window_stride, 1);
    model_free(m);
    diags_free(&d);

    m = load(&d, "model M { input x : [17] target rul : real trunk { } task rul { head { dense(1) } loss mse } }");
    assert_non_null(m);
    assert_int_equal(m->data.window, 1);
    assert_int_equal(m->n_buffers, 0);
    model_free(m);
    diags_free(&d);
}

/* The report counts the kernels' scratch as the code generator plans it: one area, its
 * per-sample part the largest any layer asks for, its fixed part likewise (the two maxima may
 * come from different layers), included in the memory total. Sizes are seq_kernels.h's. */
static void test_report_scratch(void **state)
{
    (void)state;
    Diags d;
    Model *m = load(&d, "model M { input x : [40, 6] target rul : real\n"
                        "data cmapss { window = 40; features = (s2, s3, s4, s7, s8, s9) }\n"
                        "trunk { conv1d(4, kernel = 3) attention(heads = 1) lstm(64) pool(last) }\n"
                        "task rul { head { dense(1) } loss mse } train { batch = 8 } }");
    assert_non_null(m);
    assert_int_equal(d.n_errors, 0);
    ReportTotals t;
    report_totals(m, &t);
    /* conv1d: To = 38, im2col To*K*Cin = 684 per sample, fixed 2*Cout*K*Cin = 144;
     * attention on [38, 4]: 4*T*E = 608 per sample, fixed 2*T*T = 2888;
     * lstm(64) on [38, 4]: 4*T*H + 2*H = 9856 per sample */
    assert_int_equal(t.scratch_per_sample, 4 * 38 * 64 + 2 * 64);
    assert_int_equal(t.scratch_fixed, 2 * 38 * 38);
    assert_int_equal(t.mem_scratch, 4 * (8 * t.scratch_per_sample + t.scratch_fixed));
    assert_int_equal(t.mem_total, t.mem_params + t.mem_grads + t.mem_optimizer + t.mem_acts + t.mem_targets +
                                      t.mem_scratch);
    model_free(m);
    diags_free(&d);

    /* the tester's case: kernel 151 over 200 steps of 17 features, batch 64 (~150 MB peak) */
    m = load(&d, "model M { input x : [200, 17] target rul : real data cmapss { window = 200 }\n"
                 "trunk { conv1d(64, kernel = 151, padding = 75) relu pool(mean) }\n"
                 "task rul { head { dense(1) } loss mse } train { batch = 64 } }");
    assert_non_null(m);
    report_totals(m, &t);
    assert_int_equal(t.scratch_per_sample, 200 * 151 * 17);
    assert_int_equal(t.scratch_fixed, 2 * 64 * 151 * 17);
    assert_true(t.mem_total > 140 * 1000 * 1000 && t.mem_total < 160 * 1000 * 1000);
    model_free(m);
    diags_free(&d);

    /* dense models need no scratch */
    m = load(&d, "model M { input x : [17] target rul : real trunk { dense(8) relu } "
                 "task rul { head { dense(1) } loss mse } }");
    assert_non_null(m);
    report_totals(m, &t);
    assert_int_equal(t.mem_scratch, 0);
    model_free(m);
    diags_free(&d);
}

/* The size check counts what the report's memory estimate counts: report_step_floats is
 * (mem_acts + mem_scratch) / 4 at the same batch, and finds where the running total passes a
 * limit. Just below the limits a model loads; one float or parameter more is refused. */
static void test_size_limits(void **state)
{
    (void)state;
    Diags d;
    diags_init(&d, stderr);
    Model *m = model_load(&d, MTLC_EXAMPLES_DIR "/dual_task.mtl");
    assert_non_null(m);
    ReportTotals t;
    report_totals(m, &t);
    int b, l;
    int64_t floats = report_step_floats(m, m->train.batch, INT64_MAX, &b, &l);
    assert_int_equal(4 * floats, t.mem_acts + t.mem_scratch);
    assert_int_equal(b, -2); /* never past INT64_MAX */
    report_step_floats(m, m->train.batch, 0, &b, &l);
    assert_int_equal(b, -1); /* the input alone is more than 0 floats */
    report_step_floats(m, m->train.batch, floats - 1, &b, &l);
    assert_int_equal(b, m->n_blocks - 1); /* the last layer of the last head takes it over */
    assert_int_equal(l, m->blocks[b].n_layers - 1);
    model_free(m);
    diags_free(&d);

    /* dense(1000000) on [17]: 18,000,000 parameters; then dense(N): 1,000,001 N; the head
     * N + 1. N = 2129 is 2,147,004,259 <= 2^31 - 1 and loads; N = 2130 is 2,148,004,261, over. */
    m = load(&d, "model M { input x : [17] target rul : real trunk { dense(1000000) dense(2129) } "
                 "task rul { head { dense(1) } loss mse } train { batch = 1 } }");
    assert_non_null(m);
    report_totals(m, &t);
    assert_int_equal(t.total, 2147004259);
    model_free(m);
    diags_free(&d);
    m = load(&d, "model M { input x : [17] target rul : real trunk { dense(1000000) dense(2130) } "
                 "task rul { head { dense(1) } loss mse } train { batch = 1 } }");
    assert_null(m);
    assert_int_equal(d.n_errors, 1);
    diags_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dual_mlp),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_dual_task),
        cmocka_unit_test(test_dual_task_small),
        cmocka_unit_test(test_sequence_defaults),
        cmocka_unit_test(test_report_scratch),
        cmocka_unit_test(test_size_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
