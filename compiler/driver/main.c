/* mtlc: the compiler driver.
 *
 *   mtlc SPEC                       check the spec (diagnostics only)
 *   mtlc SPEC --report[=json]       where every parameter lives, FLOPs, memory
 *   mtlc SPEC --emit=STAGE [-o F]   dump a stage: ast, typed, ir, grad-ir, llvm, asm, obj
 *   mtlc SPEC -o trainer            build a native trainer (object + libmtlrt + OpenBLAS)
 *   mtlc SPEC --shared -o model.so  build the model alone as a shared object (tests, embedding)
 *
 * The pipeline is one function: each stage runs only if the previous reported no error.
 * Every output is checked: a dump written with -o goes to FILE.tmp and is renamed to FILE only
 * once complete, the -o directory is checked before anything is compiled, and a failed write
 * (a full disk, a closed pipe) to a file or to stdout is an error, never a silent success.
 * Exit status: 0 success, 1 error in the spec (or a failed build step or write), 2 bad usage.
 */
#define _DEFAULT_SOURCE /* mkstemps */
#include "codegen/codegen.h"
#include "diag/diag.h"
#include "frontend/ast.h"
#include "ir/ir.h"
#include "report/report.h"
#include "sema/model.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef enum Emit { EMIT_NONE, EMIT_AST, EMIT_TYPED, EMIT_IR, EMIT_GRAD_IR, EMIT_LLVM, EMIT_ASM, EMIT_OBJ } Emit;

typedef struct Options {
    const char *spec;
    const char *out;
    Emit emit;
    int report;   /* 0 none, 1 text, 2 json */
    int opt_level;
    int shared;
    int no_last_step; /* --no-last-step-pruning */
} Options;

/* Everything written to stdout must have reached it: flush and close it, and turn any failure
 * into an error (otherwise `mtlc spec --report > /dev/full` would succeed). */
static int finish_stdout(void) {
    int err = 0;
    /* after an earlier failed write, errno still tells why (nothing since has failed) */
    if (fflush(stdout) != 0 || ferror(stdout)) err = errno ? errno : EIO;
    if (fclose(stdout) != 0 && !err) err = errno ? errno : EIO;
    if (err) {
        fprintf(stderr, "mtlc: error: cannot write output: %s\n", strerror(err));
        return -1;
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: mtlc SPEC.mtl [options]\n"
            "\n"
            "Compiles a multi-task model spec into a native trainer.\n"
            "\n"
            "options:\n"
            "  -o, --output FILE     build a trainer executable (or write the --emit output) to FILE\n"
            "      --report[=json]   print the parameter report (text or JSON) to stdout and stop\n"
            "      --emit=STAGE      print a stage and stop: ast, typed, ir, grad-ir, llvm, asm, obj\n"
            "      --shared          with -o: build a shared object exporting the model (no trainer)\n"
            "  -O LEVEL              LLVM optimisation level 0-3 (default 3)\n"
            "      --no-last-step-pruning\n"
            "                        compute every time step of an attention block that only\n"
            "                        reaches a pool(last) (same results; for comparisons)\n"
            "  -h, --help            this help\n"
            "      --version         print the version\n"
            "\n"
            "Without -o, --report or --emit, mtlc only checks the spec. --report, --emit and\n"
            "--shared exclude each other, and --report takes no -o.\n"
            "Exit status: 0 success, 1 error in the spec or the build, 2 bad usage.\n");
}

static _Noreturn void usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "mtlc: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'mtlc --help'.\n");
    exit(2);
}

static Emit parse_emit(const char *s) {
    static const struct { const char *name; Emit e; } kinds[] = {
        {"ast", EMIT_AST}, {"typed", EMIT_TYPED}, {"ir", EMIT_IR}, {"grad-ir", EMIT_GRAD_IR},
        {"llvm", EMIT_LLVM}, {"asm", EMIT_ASM}, {"obj", EMIT_OBJ},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(s, kinds[i].name)) return kinds[i].e;
    usage_error("unknown --emit stage '%s' (expected ast, typed, ir, grad-ir, llvm, asm or obj)", s);
}

static void parse_args(int argc, char **argv, Options *o) {
    enum { OPT_REPORT = 256, OPT_EMIT, OPT_VERSION, OPT_SHARED, OPT_NO_LAST_STEP };
    static const struct option longs[] = {
        {"output", required_argument, 0, 'o'}, {"report", optional_argument, 0, OPT_REPORT},
        {"emit", required_argument, 0, OPT_EMIT}, {"shared", no_argument, 0, OPT_SHARED},
        {"no-last-step-pruning", no_argument, 0, OPT_NO_LAST_STEP},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, OPT_VERSION}, {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->opt_level = 3;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:O:h", longs, NULL)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case 'O':
            if (strlen(optarg) != 1 || optarg[0] < '0' || optarg[0] > '3') usage_error("bad -O level '%s' (0-3)", optarg);
            o->opt_level = optarg[0] - '0';
            break;
        case OPT_REPORT:
            if (!optarg) o->report = 1;
            else if (!strcmp(optarg, "json")) o->report = 2;
            else if (!strcmp(optarg, "text")) o->report = 1;
            else usage_error("unknown --report format '%s' (expected text or json)", optarg);
            break;
        case OPT_EMIT: o->emit = parse_emit(optarg); break;
        case OPT_SHARED: o->shared = 1; break;
        case OPT_NO_LAST_STEP: o->no_last_step = 1; break;
        case 'h': usage(stdout); exit(finish_stdout() ? 1 : 0);
        case OPT_VERSION:
            printf("mtlc %s (LLVM %s)\n", MTLC_VERSION, MTLC_LLVM_VERSION);
            exit(finish_stdout() ? 1 : 0);
        case ':': usage_error("option '%s' needs a value", argv[optind - 1]);
        default: usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) usage_error("%s", "no spec file given");
    if (optind + 1 < argc) usage_error("more than one spec file given ('%s')", argv[optind + 1]);
    o->spec = argv[optind];
    if (o->out && !*o->out) usage_error("%s", "-o needs a file name, not an empty string");
    if (o->report && o->emit != EMIT_NONE)
        usage_error("%s", "--report and --emit cannot be combined (the report is a stage of its own)");
    if (o->report && o->out) usage_error("%s", "--report prints to stdout and does not take -o; redirect it instead");
    if (o->shared && o->emit != EMIT_NONE) usage_error("%s", "--shared builds a shared object and cannot be combined with --emit");
    if (o->shared && !o->out) usage_error("%s", "--shared needs -o FILE");
    if (o->emit == EMIT_OBJ && !o->out) usage_error("%s", "--emit=obj needs -o FILE");
}

/* Can OUT be created? Its directory must exist and be writable, and OUT must not be a
 * directory; a trainer or shared object (linked to OUT.tmp, then renamed) must replace a regular
 * file, never a device such as /dev/null. Checked before compiling so that a bad path is one
 * clear message, not a linker's. */
static int check_output_path(const char *out, bool linked) {
    const char *slash = strrchr(out, '/');
    char *dir = slash ? strndup(out, slash == out ? 1 : (size_t)(slash - out)) : xstrdup(".");
    if (!dir) {
        fprintf(stderr, "mtlc: error: out of memory\n");
        return -1;
    }
    struct stat st;
    int err = 0;
    if (stat(dir, &st) != 0) err = errno;
    else if (!S_ISDIR(st.st_mode)) err = ENOTDIR;
    else if (access(dir, W_OK | X_OK) != 0) err = errno;
    else if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) err = EISDIR;
    else if (linked && stat(out, &st) == 0 && !S_ISREG(st.st_mode)) {
        free(dir);
        fprintf(stderr, "mtlc: error: cannot write %s: not a regular file (the build replaces it)\n", out);
        return -1;
    }
    free(dir);
    if (err) {
        fprintf(stderr, "mtlc: error: cannot write %s: %s\n", out, strerror(err));
        return -1;
    }
    return 0;
}

/* Where a dump goes: stdout, or PATH.tmp, renamed to PATH once complete and written. A PATH
 * that exists and is not a regular file (/dev/null, a FIFO) is written directly instead. */
typedef struct Output {
    FILE *f;
    const char *path; /* NULL: stdout */
    bool direct;      /* writing PATH itself, not PATH.tmp */
    char tmp[4096];
} Output;

static int output_open(Output *w, const char *path) {
    w->path = path;
    w->f = stdout;
    w->direct = false;
    if (!path) return 0;
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        w->direct = true;
        w->f = fopen(path, "wb");
        if (!w->f) {
            fprintf(stderr, "mtlc: error: cannot write %s: %s\n", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    if ((size_t)snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path) >= sizeof w->tmp) {
        fprintf(stderr, "mtlc: error: cannot write %s: %s\n", path, strerror(ENAMETOOLONG));
        return -1;
    }
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        fprintf(stderr, "mtlc: error: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Finishes a file output: checks every write, then renames PATH.tmp to PATH; when ok is false
 * (the stage failed) the partial file is removed. stdout is checked at exit (main). */
static int output_close(Output *w, bool ok) {
    if (!w->path) return ok ? 0 : -1;
    int err = 0;
    if (fflush(w->f) != 0 || ferror(w->f)) err = errno ? errno : EIO;
    if (fclose(w->f) != 0 && !err) err = errno ? errno : EIO;
    if (w->direct) {
        if (err && ok) fprintf(stderr, "mtlc: error: cannot write %s: %s\n", w->path, strerror(err));
        return ok && !err ? 0 : -1;
    }
    if (ok && !err && rename(w->tmp, w->path) != 0) err = errno;
    if (!ok || err) unlink(w->tmp);
    if (err && ok) fprintf(stderr, "mtlc: error: cannot write %s: %s\n", w->path, strerror(err));
    return ok && !err ? 0 : -1;
}

/* Runs argv[0] with argv, waits; returns its exit status or -1. */
static int run(char *const *argv) {
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (e) {
        fprintf(stderr, "mtlc: error: cannot run %s: %s\n", argv[0], strerror(e));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *runtime_dir(void) {
    const char *d = getenv("MTLC_RUNTIME_DIR");
    return d && *d ? d : MTLC_RUNTIME_DIR_DEFAULT;
}

/* Links OBJ with the runtime into OUT, through OUT.tmp + rename so a failed link never leaves a
 * half-written executable behind (or replaces a good one). */
static int link_output(const char *obj, const char *out, int shared) {
    const char *cc = getenv("MTLC_CC");
    if (!cc || !*cc) cc = "cc";
    char tmp[4096], rt_main[4096], rt[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    snprintf(rt_main, sizeof rt_main, "%s/libmtlrt_main.a", runtime_dir());
    snprintf(rt, sizeof rt, "%s/libmtlrt.a", runtime_dir());
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)cc;
    if (shared) argv[n++] = "-shared";
    argv[n++] = (char *)obj;
    if (!shared) {
        if (access(rt, R_OK) || access(rt_main, R_OK)) {
            fprintf(stderr, "mtlc: error: runtime library not found in %s (set MTLC_RUNTIME_DIR)\n", runtime_dir());
            return -1;
        }
        argv[n++] = rt_main;
        argv[n++] = rt;
    }
    char *extra = xstrdup(MTLC_LINK_FLAGS);
    for (char *tok = strtok(extra, " "); tok && n < 60; tok = strtok(NULL, " ")) argv[n++] = tok;
    argv[n++] = "-o";
    argv[n++] = tmp;
    argv[n] = NULL;
    int st = run(argv);
    free(extra);
    if (st != 0) {
        fprintf(stderr, "mtlc: error: linking %s failed\n", out);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, out)) {
        fprintf(stderr, "mtlc: error: cannot write %s: %s\n", out, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int build(const IrGraph *g, const Options *o) {
    char obj[] = "/tmp/mtlc-XXXXXX.o";
    int fd = mkstemps(obj, 2);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
        fprintf(stderr, "mtlc: error: cannot create a temporary file: %s\n", strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(obj);
        }
        return 1;
    }
    CgOptions cg = {.output = CG_OUT_OBJ, .opt_level = o->opt_level, .out = f};
    int rc = cg_compile(g, &cg);
    int err = 0;
    if (fflush(f) != 0 || ferror(f)) err = errno ? errno : EIO;
    if (fclose(f) != 0 && !err) err = errno ? errno : EIO;
    if (rc == 0 && err) {
        fprintf(stderr, "mtlc: error: cannot write %s: %s\n", obj, strerror(err));
        rc = -1;
    }
    if (rc == 0) rc = link_output(obj, o->out, o->shared);
    unlink(obj);
    return rc == 0 ? 0 : 1;
}

/* What the language allows but the trainer cannot train: a vector (`real[N]`, N > 1) target,
 * since the trainer's data loaders give each target one value per sample (one CSV column, or
 * C-MAPSS's rul). Such a model still builds with --shared. Reported as spec errors. */
static bool trainer_unsupported(Diags *d, const Model *m) {
    bool bad = false;
    for (int i = 0; i < m->n_tasks; i++) {
        const Task *t = &m->tasks[i];
        if (t->target_kind == MTL_TARGET_REAL && t->target_width > 1) {
            diag_error(d, t->target_span,
                       "target '%s' is real[%lld], but a trainer reads one value per target and sample (one "
                       "CSV column); vector targets build only as a model object (--shared)",
                       t->name, (long long)t->target_width);
            bad = true;
        }
    }
    return bad;
}

/* The pipeline: parse+check → (report) → lower → fuse → autodiff → plan → codegen/link. */
static int compile(const Options *o) {
    Diags d;
    diags_init(&d, stderr);
    int rc = 0;
    Output w;
    if (o->emit == EMIT_AST) {
        int file = diags_load_file(&d, o->spec);
        Ast *ast = file < 0 ? NULL : parse_source(&d, (uint32_t)file);
        rc = d.n_errors || file < 0 || !ast ? 1 : 0;
        if (rc == 0) {
            if (output_open(&w, o->out)) rc = 1;
            else {
                ast_dump(&d, ast, w.f);
                rc = output_close(&w, true) ? 1 : 0;
            }
        }
        ast_free(ast);
        diags_free(&d);
        return rc;
    }
    Model *m = model_load(&d, o->spec);
    if (!m) {
        diags_free(&d);
        return 1;
    }
    if (o->report) {
        if (o->report == 2) report_json(m, stdout);
        else report_text(m, stdout);
    } else if (o->emit == EMIT_TYPED) {
        if (output_open(&w, o->out)) rc = 1;
        else {
            model_dump_typed(m, w.f);
            rc = output_close(&w, true) ? 1 : 0;
        }
    } else if (o->emit == EMIT_NONE && o->out && !o->shared && trainer_unsupported(&d, m)) {
        rc = 1;
    } else if (o->emit != EMIT_NONE || o->out) {
        IrGraph *g = ir_lower(m);
        ir_fuse(g);
        if (!o->no_last_step) ir_prune_last_step(g);
        if (o->emit != EMIT_IR) ad_build_backward(g);
        ir_plan_memory(g);
        ir_verify(g);
        if (o->emit == EMIT_NONE) {
            rc = build(g, o);
        } else if (output_open(&w, o->out)) {
            rc = 1;
        } else {
            bool ok = true;
            if (o->emit == EMIT_IR || o->emit == EMIT_GRAD_IR) {
                ir_dump(g, w.f, o->emit == EMIT_GRAD_IR);
            } else {
                CgOptions cg = {.output = o->emit == EMIT_LLVM ? CG_OUT_LLVM : o->emit == EMIT_ASM ? CG_OUT_ASM : CG_OUT_OBJ,
                                .opt_level = o->opt_level,
                                .out = w.f};
                ok = cg_compile(g, &cg) == 0;
            }
            rc = output_close(&w, ok) ? 1 : 0;
        }
        ir_free(g);
    }
    model_free(m);
    diags_free(&d);
    return rc;
}

int main(int argc, char **argv) {
    Options o;
    parse_args(argc, argv, &o);
    if (o.out && check_output_path(o.out, o.emit == EMIT_NONE)) return 1;
    int rc = compile(&o);
    if (finish_stdout() && rc == 0) rc = 1;
    return rc;
}
