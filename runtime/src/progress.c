/* A one-line progress bar on stderr (label, bar, percentage, samples/s, ETA), redrawn at most ten
 * times a second. Enabled only when stderr is a terminal: in logs and pipes the per-epoch JSON
 * lines are the progress, and carriage returns would only make noise.
 */
#include "mtl_runtime.h"

#include <stdio.h>
#include <string.h>

static void draw(MtlProgress *p, double now) {
    double el = now - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 1;
    if (frac > 1) frac = 1;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int full = (int)(frac * WIDTH);
    for (int i = 0; i < WIDTH; i++) bar[i] = i < full ? '=' : (i == full ? '>' : ' ');
    bar[WIDTH] = '\0';
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    int es = (int)(eta + 0.5);
    fprintf(stderr, "\r%s [%s] %3d%% %8.0f samples/s ETA %d:%02d ", p->label, bar,
            (int)(frac * 100), rate, es / 60, es % 60);
    fflush(stderr);
    p->last_draw = now;
}

void mtl_progress_begin(MtlProgress *p, bool enabled, const char *label, int64_t total) {
    memset(p, 0, sizeof *p);
    p->enabled = enabled;
    p->total = total;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->start = mtl_now();
    p->last_draw = 0;
}

void mtl_progress_update(MtlProgress *p, int64_t done) {
    p->done = done;
    if (!p->enabled) return;
    double now = mtl_now();
    if (now - p->last_draw >= 0.1) draw(p, now);
}

void mtl_progress_end(MtlProgress *p) {
    if (!p->enabled) return;
    draw(p, mtl_now());
    /* clear the line so the next output starts clean */
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}
