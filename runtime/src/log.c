/* Small checked I/O helpers shared by the trainer: error-buffer formatting, mkdir -p, the JSON
 * Lines log (one object per line, flushed per line so a crash loses at most the line being
 * written; the trainer writes it as OUT/log.jsonl.tmp and renames it to OUT/log.jsonl once the
 * checkpoint is saved) and a monotonic clock. Every write is checked.
 *
 * Formatting of the log lines themselves lives in trainer.c; this file only writes them.
 */
#include "mtl_runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void mtl_errf(char *err, size_t err_size, const char *fmt, ...) {
    if (!err || err_size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

int mtl_mkdir_p(const char *path, char *err, size_t err_size) {
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    if (!buf) {
        mtl_errf(err, err_size, "%s: error: out of memory", path);
        return -1;
    }
    memcpy(buf, path, n + 1);
    /* Create each prefix ending before a '/', then the whole path. */
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char save = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            mtl_errf(err, err_size, "%s: error: cannot create directory: %s", buf, strerror(errno));
            free(buf);
            return -1;
        }
        buf[i] = save;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        mtl_errf(err, err_size, "%s: error: not a directory", path);
        free(buf);
        return -1;
    }
    free(buf);
    return 0;
}

/* The pid written in a lock file, as " (pid N)", or "" */
static void lock_holder(int fd, char *who, size_t n) {
    char pid[24] = "";
    who[0] = '\0';
    ssize_t got = pread(fd, pid, sizeof pid - 1, 0);
    if (got > 0) {
        pid[got] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (pid[0]) snprintf(who, n, " (pid %s)", pid);
    }
}

/* One trainer at a time per output folder: an exclusive flock on DIR/.trainer.lock, held until
 * the descriptor is closed (or the process ends, however it ends). The file holds the holder's
 * pid for the message of the one refused. The file stays: removing it would let a third trainer
 * lock a new file while the second still holds the old one. */
int mtl_dir_lock(const char *dir, bool check_parent, char *err, size_t err_size) {
    if (check_parent) {
        /* a folder inside a live sweep's folder (OUT/seed-S) is the sweep's: its lock is on OUT */
        size_t len = strlen(dir);
        char *parent = malloc(len + 32);
        if (!parent) {
            mtl_errf(err, err_size, "%s: error: out of memory", dir);
            return -1;
        }
        memcpy(parent, dir, len + 1);
        while (len > 1 && parent[len - 1] == '/') parent[--len] = '\0';
        char *slash = strrchr(parent, '/');
        if (slash) strcpy(slash + 1, ".trainer.lock");
        else strcpy(parent, ".trainer.lock");
        int pfd = open(parent, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        free(parent);
        if (pfd >= 0) {
            if (flock(pfd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
                char who[48];
                lock_holder(pfd, who, sizeof who);
                mtl_errf(err, err_size, "%s: error: a sweep%s is writing the folder around this one; wait "
                                        "for it to finish or choose another --out", dir, who);
                close(pfd);
                return -1;
            }
            close(pfd); /* the shared lock, if taken, goes with it */
        }
    }
    size_t n = strlen(dir) + 16;
    char *path = malloc(n);
    if (!path) {
        mtl_errf(err, err_size, "%s: error: out of memory", dir);
        return -1;
    }
    snprintf(path, n, "%s/.trainer.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666); /* never through a symlink */
    if (fd < 0) {
        mtl_errf(err, err_size, "%s: error: cannot open: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char who[48];
        lock_holder(fd, who, sizeof who);
        if (e == EWOULDBLOCK)
            mtl_errf(err, err_size, "%s: error: another trainer%s is writing to this folder; wait for it to "
                                    "finish or choose another --out", dir, who);
        else
            mtl_errf(err, err_size, "%s: error: cannot lock: %s", path, strerror(e));
        close(fd);
        free(path);
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* the lock holds without the pid; only a refused trainer's message is poorer */
    }
    free(path);
    return fd;
}

#define FNV_OFFSET_EARLY 14695981039346656037ull
static int echo_errno; /* first failed write of an echoed line */

int mtl_log_open(MtlLog *log, const char *path, char *err, size_t err_size) {
    log->f = fopen(path, "w");
    if (!log->f) {
        mtl_errf(err, err_size, "%s: error: cannot open for writing: %s", path, strerror(errno));
        log->path = NULL;
        return -1;
    }
    size_t n = strlen(path) + 1;
    log->path = malloc(n);
    if (log->path) memcpy(log->path, path, n);
    log->hash = FNV_OFFSET_EARLY;
    log->bytes = 0;
    return 0;
}

/* FNV-1a 64 of the log's bytes: a state checkpoint records it, so a resume can tell its own
 * run's log from another run's in the same folder */
#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv_bytes(uint64_t h, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* 0 and the hash of the first n bytes of path, or -1 if it cannot be read or is shorter */
static int hash_prefix(const char *path, int64_t n, uint64_t *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char buf[65536];
    uint64_t h = FNV_OFFSET;
    int64_t left = n;
    while (left > 0) {
        size_t want = left < (int64_t)sizeof buf ? (size_t)left : sizeof buf;
        size_t got = fread(buf, 1, want, f);
        if (got == 0) break;
        h = fnv_bytes(h, buf, got);
        left -= (int64_t)got;
    }
    fclose(f);
    if (left > 0) return -1;
    *out = h;
    return 0;
}

static int copy_prefix(const char *from, const char *to, int64_t n, char *err, size_t err_size) {
    FILE *in = fopen(from, "rb");
    FILE *out = in ? fopen(to, "wb") : NULL;
    if (!in || !out) {
        mtl_errf(err, err_size, "%s: error: cannot copy the run's log from %s: %s", to, from, strerror(errno));
        if (in) fclose(in);
        return -1;
    }
    char buf[65536];
    int64_t left = n;
    while (left > 0) {
        size_t want = left < (int64_t)sizeof buf ? (size_t)left : sizeof buf;
        size_t got = fread(buf, 1, want, in);
        if (got == 0 || fwrite(buf, 1, got, out) != got) break;
        left -= (int64_t)got;
    }
    fclose(in);
    if (fclose(out) != 0 || left > 0) {
        mtl_errf(err, err_size, "%s: error: could not copy the first %lld bytes of %s", to,
                 (long long)n, from);
        return -1;
    }
    return 0;
}

int mtl_log_resume(MtlLog *log, const char *path, const char *const *sources, int n_sources,
                   int64_t keep_bytes, uint64_t keep_hash, char *err, size_t err_size) {
    /* the first of path and the sources whose first keep_bytes are the run's log */
    const char *found = NULL;
    uint64_t h;
    if (hash_prefix(path, keep_bytes, &h) == 0 && h == keep_hash) found = path;
    for (int i = 0; i < n_sources && !found; i++)
        if (strcmp(sources[i], path) != 0 && hash_prefix(sources[i], keep_bytes, &h) == 0 && h == keep_hash)
            found = sources[i];
    if (!found) {
        mtl_errf(err, err_size, "%s: error: the run's log was not found: neither this file nor %s "
                 "begins with the %lld bytes the state checkpoint recorded (removed, or replaced by "
                 "another run's log)", path, n_sources ? sources[0] : "the state's folder",
                 (long long)keep_bytes);
        return -1;
    }
    if (found != path && copy_prefix(found, path, keep_bytes, err, err_size) != 0) return -1;
    /* lines written after the state was saved belong to the lost part of the run */
    if (truncate(path, (off_t)keep_bytes) != 0) {
        mtl_errf(err, err_size, "%s: error: cannot truncate: %s", path, strerror(errno));
        return -1;
    }
    log->f = fopen(path, "a");
    if (!log->f) {
        mtl_errf(err, err_size, "%s: error: cannot open for appending: %s", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(path) + 1;
    log->path = malloc(n);
    if (log->path) memcpy(log->path, path, n);
    log->hash = keep_hash;
    log->bytes = keep_bytes;
    return 0;
}

int64_t mtl_log_size(const MtlLog *log) { return log->bytes; }

int mtl_log_write(MtlLog *log, const char *line, FILE *echo, char *err, size_t err_size) {
    if (log->f) {
        if (fputs(line, log->f) == EOF || fputc('\n', log->f) == EOF || fflush(log->f) != 0) {
            mtl_errf(err, err_size, "trainer: error: cannot write %s: %s",
                     log->path ? log->path : "log", strerror(errno));
            return -1;
        }
        size_t n = strlen(line);
        log->hash = fnv_bytes(fnv_bytes(log->hash, line, n), "\n", 1);
        log->bytes += (int64_t)n + 1;
    }
    if (echo) {
        /* a failure here does not stop training (the log has the line); it is remembered so the
         * program can report it and exit 1 at the end */
        errno = 0;
        if ((fputs(line, echo) == EOF || fputc('\n', echo) == EOF || fflush(echo) != 0) &&
            !echo_errno)
            echo_errno = errno ? errno : EIO;
    }
    return 0;
}

int mtl_echo_errno(void) { return echo_errno; }

int mtl_log_close(MtlLog *log, char *err, size_t err_size) {
    int rc = 0;
    if (log->f) {
        /* on disk before the caller renames it next to a checkpoint */
        errno = 0;
        int bad = ferror(log->f) ? (errno ? errno : EIO) : 0;
        if (!bad && fflush(log->f) != 0) bad = errno ? errno : EIO;
        if (!bad && fsync(fileno(log->f)) != 0 && errno != EINVAL) bad = errno ? errno : EIO;
        if (fclose(log->f) != 0 && !bad) bad = errno ? errno : EIO;
        if (bad) {
            mtl_errf(err, err_size, "trainer: error: cannot write %s: %s",
                     log->path ? log->path : "log", strerror(bad));
            rc = -1;
        }
    }
    free(log->path);
    log->f = NULL;
    log->path = NULL;
    return rc;
}

double mtl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
