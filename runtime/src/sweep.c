/* `train --seeds N` (or a list, or `seeds = N` in the spec): one run per seed into OUT/seed-S,
 * then the table the book reports: mean ± standard deviation of every test metric over the
 * seeds, the epochs reached and the wall time per epoch. The standard deviation is the sample
 * one (divided by n - 1), as numpy's std(ddof=1) and pandas' std(); with one seed it is undefined: the
 * JSON has null and the tables show the mean alone. */
#include "mtl_runtime.h"

#include <cJSON.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void mean_std(const double *v, int n, double *mean, double *sd) {
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) s += v[i], k++;
    *mean = k ? s / k : NAN;
    double q = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = k > 1 ? sqrt(q / (k - 1)) : NAN;
}


static const char *const METRIC_NAMES[] = {"rmse", "nasa", "mae", "accuracy", "macro_f1",
                                           "epochs_run", "best_epoch", "seconds_per_epoch",
                                           "test_selected_rmse", "test_selected_nasa"};
enum { N_METRICS = 10 };
/* decimals of each metric in the tables ("s per epoch" is printed with %.3g, without ±) */
static const int METRIC_DECIMALS[N_METRICS] = {2, 1, 2, 4, 4, 1, 1, 3, 2, 1};

/* "mean ± sd" of every metric with its decimals, or the mean alone when sd is undefined */
typedef struct PmText {
    char s[N_METRICS][64];
} PmText;

static void pm_text(PmText *t, const double *mean, const double *sd) {
    for (int i = 0; i < N_METRICS; i++) {
        int d = METRIC_DECIMALS[i];
        if (isfinite(sd[i])) snprintf(t->s[i], sizeof t->s[i], "%.*f ± %.*f", d, mean[i], d, sd[i]);
        else snprintf(t->s[i], sizeof t->s[i], "%.*f", d, mean[i]);
    }
}

static double metric(const MtlRunResult *r, int i) {
    switch (i) {
    case 0: return r->rmse;
    case 1: return r->nasa;
    case 2: return r->mae;
    case 3: return r->accuracy;
    case 4: return r->macro_f1;
    case 5: return (double)r->epochs_run;
    case 6: return (double)r->best_epoch;
    case 7: return r->seconds_per_epoch;
    case 8: return r->test_best_rmse;
    default: return r->test_best_nasa;
    }
}

/* Writes OUT/summary.json and OUT/summary.md (each through a temporary file and a rename). */
static int write_summary(const char *dir, const MtlModelInfo *m, const MtlRunResult *res, int n,
                         const char *selected_on, const uint64_t *diverged, int n_diverged, int requested) {
    char path[4096], tmp[4200];
    double mean[N_METRICS], sd[N_METRICS];
    double *v = calloc((size_t)(n > 0 ? n : 1), sizeof *v);
    if (!v) return -1;
    for (int i = 0; i < N_METRICS; i++) {
        for (int s = 0; s < n; s++) v[s] = metric(&res[s], i);
        mean_std(v, n, &mean[i], &sd[i]);
    }
    free(v);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", m->name);
    cJSON_AddStringToObject(root, "selected_on", selected_on);
    cJSON_AddStringToObject(root, "std", "sample (n - 1)");
    /* the sweep's seeds: fewer runs + diverged than this means the sweep stopped before its end */
    cJSON_AddNumberToObject(root, "seeds_requested", requested);
    cJSON *runs = cJSON_AddArrayToObject(root, "runs");
    for (int s = 0; s < n; s++) {
        cJSON *o = cJSON_CreateObject();
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)res[s].seed);
        cJSON_AddItemToObject(o, "seed", cJSON_CreateRaw(seed)); /* exact beyond 2^53 */
        for (int i = 0; i < N_METRICS; i++) {
            double x = metric(&res[s], i);
            if (isfinite(x)) cJSON_AddNumberToObject(o, METRIC_NAMES[i], x);
            else cJSON_AddNullToObject(o, METRIC_NAMES[i]);
        }
        cJSON_AddBoolToObject(o, "stopped_early", res[s].stopped_early);
        cJSON_AddItemToArray(runs, o);
    }
    /* seeds whose training diverged: listed, never in the statistics */
    cJSON *div = cJSON_AddArrayToObject(root, "diverged");
    for (int d = 0; d < n_diverged; d++) {
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)diverged[d]);
        cJSON_AddItemToArray(div, cJSON_CreateRaw(seed));
    }
    cJSON *agg = cJSON_AddObjectToObject(root, "mean");
    cJSON *dev = cJSON_AddObjectToObject(root, "std_dev");
    for (int i = 0; i < N_METRICS; i++) {
        if (isfinite(mean[i])) cJSON_AddNumberToObject(agg, METRIC_NAMES[i], mean[i]);
        else cJSON_AddNullToObject(agg, METRIC_NAMES[i]);
        if (isfinite(sd[i])) cJSON_AddNumberToObject(dev, METRIC_NAMES[i], sd[i]);
        else cJSON_AddNullToObject(dev, METRIC_NAMES[i]);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    int rc = 0;
    snprintf(path, sizeof path, "%s/summary.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "trainer: error: cannot write %s\n", path);
        rc = -1;
    }
    free(text);

    snprintf(path, sizeof path, "%s/summary.md", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "trainer: error: cannot write %s\n", path);
        return -1;
    }
    if (n == 0) { /* no seed finished: say so, in place of an earlier sweep's summary */
        if (n_diverged < requested)
            fprintf(f, "Model %s: no seed finished; the sweep stopped after %d of %d seeds; diverged (too "
                       "many non-finite steps in a row):", m->name, n_diverged, requested);
        else
            fprintf(f, "Model %s: no seed finished; every seed diverged (too many non-finite steps in a row):",
                    m->name);
        for (int d = 0; d < n_diverged; d++)
            fprintf(f, "%s %llu", d ? "," : "", (unsigned long long)diverged[d]);
        fprintf(f, ".\n");
        if (fclose(f) != 0 || rename(tmp, path) != 0) {
            fprintf(stderr, "trainer: error: cannot write %s\n", path);
            return -1;
        }
        fprintf(stderr, "trainer: wrote %s/summary.md and %s/summary.json (no seed finished)\n", dir, dir);
        return rc;
    }
    fprintf(f, "| seeds | epochs reached | RMSE | NASA | MAE | accuracy | macro-F1 | s / epoch |\n");
    fprintf(f, "| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    PmText t;
    pm_text(&t, mean, sd);
    fprintf(f, "| %d | %s | %s | %s | %s | %s | %s | %.3g |\n", n, t.s[5], t.s[0], t.s[1], t.s[2], t.s[3],
            t.s[4], mean[7]);
    if (n > 1)
        fprintf(f, "\nModel %s; selection on %s; mean ± sample standard deviation over the seeds "
                   "(test metrics of the selected weights).\n", m->name, selected_on);
    else
        fprintf(f, "\nModel %s; selection on %s; one seed: its test metrics (of the selected weights), "
                   "no standard deviation.\n", m->name, selected_on);
    if (n + n_diverged < requested)
        fprintf(f, "The sweep stopped after %d of %d seeds: running its command again continues it.\n",
                n + n_diverged, requested);
    fprintf(f, "The same runs under the book's protocol (each run's epoch with the lowest test "
               "RMSE - optimistic): RMSE %s, NASA %s.\n", t.s[8], t.s[9]);
    if (n_diverged > 0) {
        fprintf(f, "Diverged (too many non-finite steps in a row; not in the statistics): seed%s",
                n_diverged > 1 ? "s" : "");
        for (int d = 0; d < n_diverged; d++)
            fprintf(f, "%s %llu", d ? "," : "", (unsigned long long)diverged[d]);
        fprintf(f, ".\n");
    }
    fprintf(f, "\n");
    fprintf(f, "| seed | epochs | best epoch | RMSE | NASA | MAE | accuracy | macro-F1 | "
               "test-selected epoch | its RMSE | its NASA |\n");
    fprintf(f, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (int s = 0; s < n; s++)
        fprintf(f, "| %llu | %lld%s | %lld | %.2f | %.1f | %.2f | %.4f | %.4f | %lld | %.2f | %.1f |\n",
                (unsigned long long)res[s].seed, (long long)res[s].epochs_run,
                res[s].stopped_early ? " (early stop)" : "", (long long)res[s].best_epoch,
                res[s].rmse, res[s].nasa, res[s].mae, res[s].accuracy, res[s].macro_f1,
                (long long)res[s].test_best_epoch, res[s].test_best_rmse, res[s].test_best_nasa);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "trainer: error: cannot write %s\n", path);
        return -1;
    }
    FILE *out = stderr;
    if (n > 1)
        fprintf(out, "\nsweep over %d seeds (mean ± sample std of the test metrics; selection on %s):\n",
                n, selected_on);
    else
        fprintf(out, "\nsweep with one finished seed (its test metrics; selection on %s):\n", selected_on);
    fprintf(out, "  epochs reached %s\n  RMSE %s\n  NASA %s\n  MAE %s\n  accuracy %s\n  macro-F1 %s\n"
                 "  %.3g s per epoch\n",
            t.s[5], t.s[0], t.s[1], t.s[2], t.s[3], t.s[4], mean[7]);
    if (n_diverged > 0)
        fprintf(out, "  (%d more seed%s diverged and %s left out)\n", n_diverged, n_diverged > 1 ? "s" : "",
                n_diverged > 1 ? "are" : "is");
    fprintf(out, "trainer: wrote %s/summary.md and %s/summary.json\n", dir, dir);
    return rc;
}

static const char *selected_text(const char *s) {
    if (!s) return "validation";
    if (!strcmp(s, "test")) return "the TEST set (the book's protocol)";
    if (!strcmp(s, "none")) return "none (last epoch)";
    return "validation";
}

static double num_or_nan(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The result of a finished run from its log (a sweep that continues reuses finished seeds). */
static int result_from_log(const char *dir, uint64_t seed, int64_t epochs, MtlRunResult *res) {
    char path[4400];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    memset(res, 0, sizeof *res);
    res->seed = seed;
    res->test_best_rmse = res->test_best_nasa = NAN;
    char *line = NULL;
    size_t cap = 0;
    double last_time = NAN, last_train = NAN, last_best = 0;
    bool have_val = false;
    while (getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "test");
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "epoch")) &&
            cJSON_GetObjectItemCaseSensitive(j, "loss")) {
            res->epochs_run++;
            last_time = num_or_nan(j, "time_s");
            last_train = num_or_nan(j, "train_s");
            last_best = num_or_nan(j, "best_epoch");
            have_val = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "val"));
            const cJSON *te = cJSON_GetObjectItemCaseSensitive(j, "test_epoch");
            double r = num_or_nan(te, "rmse");
            if (isfinite(r) && (res->test_best_epoch == 0 || r < res->test_best_rmse)) {
                res->test_best_epoch = res->epochs_run;
                res->test_best_rmse = r;
                res->test_best_nasa = num_or_nan(te, "nasa");
            }
        } else if (cJSON_IsObject(t)) {
            res->have_test = true;
            res->rmse = num_or_nan(t, "rmse");
            res->nasa = num_or_nan(t, "nasa");
            res->mae = num_or_nan(t, "mae");
            res->accuracy = num_or_nan(t, "accuracy");
            res->macro_f1 = num_or_nan(t, "macro_f1");
            res->best_epoch = (int64_t)num_or_nan(t, "selected_epoch");
            const cJSON *sel = cJSON_GetObjectItemCaseSensitive(t, "selected_on");
            res->selected_on = selected_text(cJSON_IsString(sel) ? sel->valuestring : NULL);
        }
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    if (res->epochs_run == 0) return -1;
    if (!res->have_test) { /* no test set: no test line; the selection is the epoch lines' */
        res->rmse = res->nasa = res->mae = res->accuracy = res->macro_f1 = NAN;
        res->best_epoch = have_val && last_best > 0 ? (int64_t)last_best : res->epochs_run;
        res->selected_on = have_val ? "validation" : "none (last epoch)";
    }
    res->stopped_early = res->epochs_run < epochs;
    /* training seconds per epoch, as a run reports its own (train_s); logs before train_s have
     * only the run's wall time, evaluation included */
    double secs = isfinite(last_train) ? last_train : last_time;
    res->seconds_per_epoch = isfinite(secs) ? secs / (double)res->epochs_run : NAN;
    return 0;
}

int mtl_train(const MtlModelInfo *m, const MtlTrainOptions *o) {
    int n = o->n_seeds;
    uint64_t first = o->has_seed ? o->seed : m->train.seed;
    bool from_spec = n == 0 && !o->resume && m->train.seeds > 1;
    if (from_spec) n = (int)m->train.seeds;
    if (n == 0 || o->resume) return mtl_train_run(m, o, NULL);

    char *dir;
    if (o->out) {
        dir = strdup(o->out);
    } else {
        size_t len = strlen(m->name) + 8;
        dir = malloc(len);
        if (dir) snprintf(dir, len, "runs/%s", m->name);
    }
    MtlRunResult *res = calloc((size_t)n, sizeof *res); /* the finished runs, in seed order */
    uint64_t *diverged = calloc((size_t)n, sizeof *diverged);
    MtlTrainOptions *so = malloc(sizeof *so);
    if (!dir || !res || !diverged || !so) {
        fprintf(stderr, "trainer: error: out of memory\n");
        exit(1);
    }
    int rc = 0, done = 0, n_diverged = 0;
    char sub[4200];
    /* one sweep per folder at a time: its seeds' runs and the summary are this process's */
    char err[MTL_ERR_SIZE];
    int lock_fd = -1;
    if (mtl_mkdir_p(dir, err, sizeof err) != 0 || (lock_fd = mtl_dir_lock(dir, true, err, sizeof err)) < 0) {
        fprintf(stderr, "trainer: %s\n", err);
        free(so);
        free(diverged);
        free(res);
        free(dir);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        *so = *o;
        so->n_seeds = 0;
        so->in_sweep = true;
        so->has_seed = true;
        so->seed = from_spec || o->n_seeds == 0 ? first + (uint64_t)i : o->seeds[i];
        snprintf(sub, sizeof sub, "%s/seed-%llu", dir, (unsigned long long)so->seed);
        so->out = sub;
        memset(&res[done], 0, sizeof res[done]);
        /* a sweep that stopped continues: finished seeds are reused, an interrupted one resumed */
        char state[4300];
        snprintf(state, sizeof state, "%s/state.safetensors", sub);
        /* a seed folder another trainer is writing: say so, with its pid, before reading its files */
        struct stat st;
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
            int probe = mtl_dir_lock(sub, false, err, sizeof err);
            if (probe < 0) {
                fprintf(stderr, "trainer: %s\n", err);
                rc = 1;
                break;
            }
            close(probe); /* the seed's run takes it again */
        }
        int status = mtl_train_state_status(m, so, state);
        int64_t epochs = so->epochs >= 0 ? so->epochs : m->train.epochs;
        if (status == MTL_STATE_FINISHED && result_from_log(sub, so->seed, epochs, &res[done]) == 0) {
            fprintf(stderr, "trainer: sweep run %d of %d: seed %llu already finished in %s; its "
                            "result is reused\n", i + 1, n, (unsigned long long)so->seed, sub);
            done++;
            continue;
        }
        if (status == MTL_STATE_OTHER || status == MTL_STATE_FINISHED) {
            fprintf(stderr, "trainer: error: %s holds a run that is not this sweep's (other settings "
                            "or spec, or a finished run without its log); choose another --out\n",
                    state);
            rc = 1;
            break;
        }
        if (status == MTL_STATE_UNFINISHED) {
            so->resume = state;
            so->out = NULL;
            fprintf(stderr, "trainer: sweep run %d of %d: continuing seed %llu from %s\n", i + 1, n,
                    (unsigned long long)so->seed, state);
        } else {
            fprintf(stderr, "trainer: sweep run %d of %d: seed %llu into %s\n", i + 1, n,
                    (unsigned long long)so->seed, sub);
        }
        rc = mtl_train_run(m, so, &res[done]);
        if (rc != 0 && res[done].diverged) {
            /* one seed's divergence is a result about that seed, not the end of the sweep */
            diverged[n_diverged++] = so->seed;
            rc = 0;
            if (i + 1 < n)
                fprintf(stderr, "trainer: seed %llu diverged; the sweep goes on with the next seed\n",
                        (unsigned long long)so->seed);
            continue;
        }
        if (rc != 0) break;
        done++;
    }
    if (done > 0 || n_diverged > 0) {
        const char *sel = done > 0 && res[0].selected_on ? res[0].selected_on : "validation";
        for (int i = 1; i < done; i++)
            if (res[i].selected_on && strcmp(res[i].selected_on, sel) != 0) sel = "mixed (see each run)";
        if (write_summary(dir, m, res, done, sel, diverged, n_diverged, n) != 0 && rc == 0) rc = 1;
        if (done + n_diverged < n)
            fprintf(stderr, "trainer: the sweep stopped after %d of %d seeds; the summary covers "
                            "those\n", done + n_diverged, n);
    }
    if (n_diverged > 0) {
        /* the sweep is incomplete: the exit status says so, after every other seed has run */
        fprintf(stderr, "trainer: error: %d of %d seeds diverged%s\n", n_diverged, n,
                done > 0 ? " (listed in the summary, not in its statistics)" : "; no seed finished");
        if (rc == 0) rc = 1;
    }
    close(lock_fd);
    free(so);
    free(diverged);
    free(res);
    free(dir);
    return rc;
}
