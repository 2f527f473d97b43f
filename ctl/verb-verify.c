/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batchctl.h"
#include "conf.h"
#include "log.h"
#include "output.h"
#include "verb-functions.h"

/* batchctl verify: the configuration checked by the daemon's own loader (daemon/conf.c), without a daemon. The
 * loader is pure data in, data out and prints nothing, so every message is the one batchd would log or return
 * from Reload, "<file>:<line>: <what>", "did you mean" included. Only conf.c and what it needs (calendar, job
 * parameters, time spans) is linked in: nothing of the manager, the repository or the bus. */

const char *arg_config = NULL;

typedef struct Findings {
        char **errors;
        size_t n_errors;
        char **warnings;
        size_t n_warnings;
} Findings;

static void findings_done(Findings *f) {
        strv_free(f->errors);
        strv_free(f->warnings);
}

static bool strv_contains(char * const *l, const char *s) {
        for (; l && *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

/* Takes s. The same message twice (a job file given on the command line that also lies in jobs_dir) is
 * reported once. */
static int findings_add(char ***l, size_t *n, char *s) {
        char **t;

        if (!s)
                return -ENOMEM;
        if (strv_contains(*l, s)) {
                free(s);
                return 0;
        }
        t = reallocarray(*l, *n + 2, sizeof(char *));
        if (!t) {
                free(s);
                return -ENOMEM;
        }
        t[(*n)++] = s;
        t[*n] = NULL;
        *l = t;
        return 0;
}

/* How the daemon this configuration is for would load it: batchd on the system bus runs as root (every job
 * names its user, files belong to root), batchd --user as the invoking user. */
static void verify_load_options(ConfigLoadOptions *o) {
        config_load_options_init(o);
        /* Reload's rules: every invalid job file is an error, nothing is skipped. */
        o->strict = true;
        o->daemon_uid = arg_user ? geteuid() : 0;
        o->owner_uid = o->daemon_uid;
}

/* s with every occurrence of from replaced by to. */
static char *replace_all(const char *s, const char *from, const char *to) {
        size_t lf = strlen(from), lt = strlen(to);
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        for (const char *p = s; *p; ) {
                const char *q = strstr(p, from);

                if (!q) {
                        fputs(p, f);
                        break;
                }
                fwrite(p, 1, q - p, f);
                fwrite(to, 1, lt, f);
                p = q + lf;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* Adds the messages of the load of main_path with options o, each with the name of every copy in from[] put back
 * as to[] (n pairs). Errors are those of a reload (strict: nothing skipped, every message once); warnings
 * those of the files that load, as at startup (the loader gives no warnings when the load fails, and one
 * invalid job file fails a strict load). Returns whether the main file was found. */
static int load_findings(const char *main_path, const ConfigLoadOptions *o, char **from, char **to, size_t n,
                         Findings *f) {
        for (int pass = 0; pass < 2; pass++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_strv_free_ char **errors = NULL;
                ConfigLoadOptions options = *o;
                char **l;
                int r;

                options.strict = pass == 0;
                r = config_load(main_path, &options, &c, &errors);
                if (r == -ENOMEM)
                        return log_oom();
                l = pass == 0 ? errors : c ? c->warnings : NULL;
                for (char **e = l; e && *e; e++) {
                        _cleanup_free_ char *m = strdup(*e);

                        for (size_t i = 0; m && i < n; i++) {
                                char *t = replace_all(m, from[i], to[i]);

                                free(m);
                                m = t;
                        }
                        r = pass == 0 ? findings_add(&f->errors, &f->n_errors, TAKE_PTR(m))
                                      : findings_add(&f->warnings, &f->n_warnings, TAKE_PTR(m));
                        if (r < 0)
                                return log_oom();
                }
                if (pass == 1)
                        return c && c->main_file_found;
        }
        return 0;
}

/* The main file and its jobs_dir exactly as batchd loads them, ownership and permission checks included. */
static int verify_main(const char *path, bool explicit, Findings *f) {
        ConfigLoadOptions o;
        char *m = NULL;
        int r;

        verify_load_options(&o);
        r = load_findings(path, &o, NULL, NULL, 0, f);
        if (r != 0)
                return r < 0 ? r : 0;
        if (access(path, F_OK) >= 0 || errno != ENOENT)
                return 0;       /* found, but invalid: reported */

        /* The daemon starts with built-in defaults then; a file named on the command line must exist. */
        if (explicit) {
                if (asprintf(&m, "%s: cannot open: %s", path, strerror(ENOENT)) < 0)
                        return log_oom();
                r = findings_add(&f->errors, &f->n_errors, m);
        } else {
                if (asprintf(&m, "%s: does not exist; batchd uses the built-in defaults", path) < 0)
                        return log_oom();
                r = findings_add(&f->warnings, &f->n_warnings, m);
        }
        return r < 0 ? log_oom() : 0;
}

/* The settings job files are loaded with: those of the main file when it loads, else the defaults. */
static uint64_t job_file_size_max(const char *main_path) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        ConfigLoadOptions o;

        verify_load_options(&o);
        o.strict = false;
        if (config_load(main_path, &o, &c, &errors) < 0)
                return CONFIG_FILE_SIZE_MAX_DEFAULT;
        return c->job_file_size_max;
}

static int copy_file(const char *from, int dir_fd, const char *to, char **ret_error) {
        _cleanup_close_ int in = -EBADF, out = -EBADF;
        struct stat st;
        char buf[64 * 1024];

        /* O_NONBLOCK: a FIFO must not hang us before fstat() tells what it is. */
        in = open(from, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (in < 0)
                return asprintf(ret_error, "%s: cannot open: %s", from, strerror(errno)) < 0 ? -ENOMEM : -EINVAL;
        if (fstat(in, &st) < 0)
                return asprintf(ret_error, "%s: cannot stat: %s", from, strerror(errno)) < 0 ? -ENOMEM : -EINVAL;
        if (!S_ISREG(st.st_mode))
                return asprintf(ret_error, "%s: not a regular file", from) < 0 ? -ENOMEM : -EINVAL;

        out = openat(dir_fd, to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return -errno;
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf)), w = 0;

                if (n < 0)
                        return asprintf(ret_error, "%s: cannot read: %s", from, strerror(errno)) < 0 ? -ENOMEM : -EINVAL;
                if (n == 0)
                        break;
                while (w < n) {
                        ssize_t k = write(out, buf + w, n - w);

                        if (k < 0)
                                return -errno;
                        w += k;
                }
        }
        return 0;
}

static int fputs_config_string(const char *s, FILE *f) {
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fputc('\\', f);
                fputc(*s, f);
        }
        return fputc('"', f) == EOF ? -EIO : 0;
}

/* Job files named on the command line are checked for what they say, not for where they lie: they are
 * usually about to be installed. The loader only reads a jobs_dir, so they are copied into a private one (ours,
 * mode 0700: its ownership checks pass) under numbered names that keep their order, and its messages get the
 * names given back. They are checked together (a job name defined twice among them is an error) with the
 * main file's job_file_size_max and the user rule of the daemon (--user or not). */
static int verify_job_files(char **files, size_t n_files, const char *main_path, Findings *f) {
        _cleanup_strv_free_ char **copies = NULL;
        _cleanup_free_ char *dir = NULL, *jobs = NULL, *conf = NULL;
        _cleanup_close_ int jobs_fd = -EBADF;
        _cleanup_fclose_ FILE *cf = NULL;
        const char *tmp = getenv("TMPDIR");
        ConfigLoadOptions o;
        size_t copied = 0;
        int r, ret = 0;

        /* The loader wants an absolute jobs_dir. */
        if (asprintf(&dir, "%s/batchctl-verify-XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp") < 0)
                return log_oom();
        if (!mkdtemp(dir))
                return log_error_errno(errno, "Failed to create a temporary directory: %m");
        if (asprintf(&jobs, "%s/jobs.d", dir) < 0 || asprintf(&conf, "%s/batchd.conf", dir) < 0) {
                ret = log_oom();
                goto finish;
        }
        copies = calloc(n_files + 1, sizeof(char *));
        if (!copies) {
                ret = log_oom();
                goto finish;
        }
        if (mkdir(jobs, 0700) < 0) {
                ret = log_error_errno(errno, "Failed to create %s: %m", jobs);
                goto finish;
        }
        jobs_fd = open(jobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (jobs_fd < 0) {
                ret = log_error_errno(errno, "Failed to open %s: %m", jobs);
                goto finish;
        }

        for (size_t i = 0; i < n_files; i++) {
                char name[32], *error = NULL;

                (void) snprintf(name, sizeof(name), "%06zu.conf", i);
                r = copy_file(files[i], jobs_fd, name, &error);
                if (r == -EINVAL) {
                        r = findings_add(&f->errors, &f->n_errors, error);
                        if (r < 0) {
                                ret = log_oom();
                                goto finish;
                        }
                        continue;
                }
                if (r < 0) {
                        ret = r == -ENOMEM ? log_oom() : log_error_errno(r, "Failed to copy %s to %s: %m",
                                                                         files[i], jobs);
                        goto finish;
                }
                copied = i + 1;
        }

        cf = fopen(conf, "wxe");
        if (!cf) {
                ret = log_error_errno(errno, "Failed to create %s: %m", conf);
                goto finish;
        }
        (void) fchmod(fileno(cf), 0600);
        fputs("jobs_dir = ", cf);
        fputs_config_string(jobs, cf);
        fprintf(cf, ";\njob_file_size_max = %" PRIu64 "L;\n", job_file_size_max(main_path));
        if (fflush(cf) != 0 || ferror(cf)) {
                ret = log_error_errno(EIO, "Failed to write %s.", conf);
                goto finish;
        }

        for (size_t i = 0; i < copied; i++)
                if (asprintf(&copies[i], "%s/%06zu.conf", jobs, i) < 0) {
                        ret = log_oom();
                        goto finish;
                }

        config_load_options_init(&o);
        o.daemon_uid = arg_user ? geteuid() : 0;
        o.owner_uid = geteuid();        /* of the copies */
        r = load_findings(conf, &o, copies, files, copied, f);
        if (r < 0)
                ret = r;

finish:
        for (size_t i = 0; i < copied; i++) {
                char name[32];

                (void) snprintf(name, sizeof(name), "%06zu.conf", i);
                if (jobs_fd >= 0)
                        (void) unlinkat(jobs_fd, name, 0);
        }
        if (conf)
                (void) unlink(conf);
        if (jobs)
                (void) rmdir(jobs);
        (void) rmdir(dir);
        return ret;
}

static bool is_main_file(const char *path) {
        const char *slash = strrchr(path, '/');

        return streq(slash ? slash + 1 : path, "batchd.conf");
}

int verb_verify(int argc, char *argv[], void *userdata) {
        _cleanup_(findings_done) Findings f = {};
        _cleanup_free_ char **job_files = NULL;
        const char *main_path = arg_config;
        size_t n_job_files = 0;
        int r;

        job_files = calloc(argc, sizeof(char *));
        if (!job_files)
                return log_oom();
        for (int i = 1; i < argc; i++) {
                if (isempty(argv[i]))
                        return log_error_errno(EINVAL, "An empty file name is not a file.");
                if (is_main_file(argv[i]) && !main_path)
                        main_path = argv[i];
                else if (is_main_file(argv[i]))
                        return log_error_errno(EINVAL, "More than one main file given (%s and %s).", main_path,
                                               argv[i]);
                else
                        job_files[n_job_files++] = argv[i];
        }

        /* Without FILE (or with a main file) the configuration batchd would load; with job files only, those. */
        if (main_path || n_job_files == 0) {
                r = verify_main(main_path ?: CONFIG_MAIN_PATH_DEFAULT, main_path, &f);
                if (r < 0)
                        return r;
        }
        if (n_job_files > 0) {
                r = verify_job_files(job_files, n_job_files, main_path ?: CONFIG_MAIN_PATH_DEFAULT, &f);
                if (r < 0)
                        return r;
        }

        if (arg_json != JSON_OFF) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                json_object *e = json_object_new_array(), *w = json_object_new_array();

                if (!o || !e || !w || json_object_object_add(o, "errors", e) < 0) {
                        json_object_put(e);
                        json_object_put(w);
                        return log_oom();
                }
                if (json_object_object_add(o, "warnings", w) < 0) {
                        json_object_put(w);
                        return log_oom();
                }
                for (size_t i = 0; i < f.n_errors; i++)
                        if (json_object_array_add(e, json_object_new_string(f.errors[i])) < 0)
                                return log_oom();
                for (size_t i = 0; i < f.n_warnings; i++)
                        if (json_object_array_add(w, json_object_new_string(f.warnings[i])) < 0)
                                return log_oom();
                r = json_print(o, stdout);
                if (r < 0)
                        return r;
        } else {
                /* One line each, as batchd logs them: errors first, then what is valid but probably a mistake. */
                for (size_t i = 0; i < f.n_errors; i++)
                        log_error("%s", f.errors[i]);
                for (size_t i = 0; i < f.n_warnings; i++)
                        log_warning("%s", f.warnings[i]);
        }

        return f.n_errors > 0 ? EXIT_FAILURE : 0;
}
