/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <libconfig.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "conf.h"
#include "db.h"

/* Every message found while loading. Nothing is printed: the caller decides whether messages go to the
 * journal (startup) or back to a D-Bus caller (reload). */
typedef struct LoadContext {
        const ConfigLoadOptions *options;
        char **errors;
        size_t n_errors;
        char **warnings;        /* valid, but probably not what was meant; end up in Config.warnings */
        size_t n_warnings;
        bool oom;
} LoadContext;

/* Where messages about the settings being parsed point: the file, and a prefix naming the object, such as
 * "job 'x'" or "job 'x': step 's'" (NULL for the main file). */
typedef struct ParseState {
        LoadContext *ctx;
        const char *file;
        const char *what;
} ParseState;

typedef int (*ParseFunc)(ParseState *st, const config_setting_t *s, void *data);

typedef struct ConfigKey {
        const char *name;
        ParseFunc parse;         /* NULL: parsed before the table is walked */
        size_t offset;
} ConfigKey;

static const char *const job_overlap_table[_JOB_OVERLAP_MAX] = {
        [JOB_OVERLAP_SKIP] = "skip",
        [JOB_OVERLAP_QUEUE] = "queue",
        [JOB_OVERLAP_ALLOW] = "allow",
};

static const char *const job_incrementer_table[_JOB_INCREMENTER_MAX] = {
        [JOB_INCREMENTER_NONE] = "none",
        [JOB_INCREMENTER_RUN_ID] = "run.id",
};

const char *job_overlap_to_string(JobOverlap o) {
        if (o < 0 || o >= _JOB_OVERLAP_MAX)
                return NULL;
        return job_overlap_table[o];
}

JobOverlap job_overlap_from_string(const char *s) {
        if (!s)
                return _JOB_OVERLAP_INVALID;
        for (JobOverlap o = 0; o < _JOB_OVERLAP_MAX; o++)
                if (streq(job_overlap_table[o], s))
                        return o;
        return _JOB_OVERLAP_INVALID;
}

const char *job_incrementer_to_string(JobIncrementer i) {
        if (i < 0 || i >= _JOB_INCREMENTER_MAX)
                return NULL;
        return job_incrementer_table[i];
}

JobIncrementer job_incrementer_from_string(const char *s) {
        if (!s)
                return _JOB_INCREMENTER_INVALID;
        for (JobIncrementer i = 0; i < _JOB_INCREMENTER_MAX; i++)
                if (streq(job_incrementer_table[i], s))
                        return i;
        return _JOB_INCREMENTER_INVALID;
}

bool config_job_name_is_valid(const char *name) {
        size_t n;

        if (isempty(name))
                return false;
        n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
        if (name[n] != '\0' || n > JOB_NAME_MAX)
                return false;
        /* They end up in paths and unit-like names, where these two mean something else. */
        return !streq(name, ".") && !streq(name, "..");
}

static bool env_name_is_valid(const char *name, size_t n) {
        if (n == 0 || (name[0] >= '0' && name[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (name[i] == '\0' ||
                    !strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_", name[i]))
                        return false;
        return true;
}

/* Appends s to the NULL-terminated list *l of *n entries, taking ownership of s even on failure. */
static int list_append_take(char ***l, size_t *n, char *s) {
        char **t;

        if (!s)
                return -ENOMEM;
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

static bool setting_type_is(const config_setting_t *s, int a, int b) {
        return config_setting_type(s) == a || config_setting_type(s) == b;
}

static void config_t_destroyp(config_t *c) {
        config_destroy(c);
}

static void dir_closep(DIR **d) {
        if (*d)
                closedir(*d);
}

/* ---- messages ---- */

static void context_add_messagev(LoadContext *ctx, bool warning, const char *file, unsigned line,
                                 const char *what, const char *format, va_list ap) _printf_(6, 0);

static void context_add_messagev(LoadContext *ctx, bool warning, const char *file, unsigned line,
                                 const char *what, const char *format, va_list ap) {
        _cleanup_free_ char *msg = NULL, *location = NULL;
        char *full;
        bool utf8;

        if (vasprintf(&msg, format, ap) < 0) {
                msg = NULL;
                ctx->oom = true;
                return;
        }
        if (line > 0) {
                if (asprintf(&location, "%s:%u", file, line) < 0)
                        location = NULL;
        } else
                location = strdup(file);
        if (!location) {
                ctx->oom = true;
                return;
        }

        if (asprintf(&full, "%s: %s%s%s", location, strempty(what), what ? ": " : "", msg) < 0) {
                ctx->oom = true;
                return;
        }

        /* Messages quote what the files say, and end up in the journal and in D-Bus replies: a newline
         * must not forge another log line, and D-Bus only carries valid UTF-8. */
        utf8 = utf8_is_valid(full);
        for (char *p = full; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f || (!utf8 && (unsigned char) *p >= 0x80))
                        *p = '?';
        if (warning ? list_append_take(&ctx->warnings, &ctx->n_warnings, full) < 0 :
                      list_append_take(&ctx->errors, &ctx->n_errors, full) < 0)
                ctx->oom = true;
}

static int context_add_error(LoadContext *ctx, const char *file, unsigned line, const char *what,
                             const char *format, ...) _printf_(5, 6);

/* Returns -EINVAL, or -ENOMEM when even the message could not be stored, so callers can return it. */
static int context_add_error(LoadContext *ctx, const char *file, unsigned line, const char *what,
                             const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        context_add_messagev(ctx, false, file, line, what, format, ap);
        va_end(ap);
        return ctx->oom ? -ENOMEM : -EINVAL;
}

static unsigned setting_line(const config_setting_t *s) {
        /* Elements of arrays and the root carry no line of their own: use the closest one that does. */
        for (; s; s = config_setting_parent(s))
                if (config_setting_source_line(s) > 0)
                        return config_setting_source_line(s);
        return 0;
}

static int parse_error(ParseState *st, const config_setting_t *s, const char *format, ...) _printf_(3, 4);

static int parse_error(ParseState *st, const config_setting_t *s, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        context_add_messagev(st->ctx, false, st->file, setting_line(s), st->what, format, ap);
        va_end(ap);
        return st->ctx->oom ? -ENOMEM : -EINVAL;
}

static int parse_warning(ParseState *st, const config_setting_t *s, const char *format, ...) _printf_(3, 4);

/* Returns 0, or -ENOMEM when the message could not be stored. */
static int parse_warning(ParseState *st, const config_setting_t *s, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        context_add_messagev(st->ctx, true, st->file, setting_line(s), st->what, format, ap);
        va_end(ap);
        return st->ctx->oom ? -ENOMEM : 0;
}

static const char *setting_type_name(const config_setting_t *s) {
        switch (config_setting_type(s)) {
        case CONFIG_TYPE_GROUP:
                return "a group";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "an integer";
        case CONFIG_TYPE_FLOAT:
                return "a floating-point number";
        case CONFIG_TYPE_STRING:
                return "a string";
        case CONFIG_TYPE_BOOL:
                return "a boolean";
        case CONFIG_TYPE_ARRAY:
                return "an array";
        case CONFIG_TYPE_LIST:
                return "a list";
        default:
                return "nothing";
        }
}

/* Edit distance counting a swap of two neighbours as one edit (optimal string alignment), for "did you
 * mean": "sheduel" is two edits from "schedule". Long words are never close to a key, so they are cut off. */
static size_t string_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), rows[3][65];
        size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

        if (la > 64 || lb > 64)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                prev[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t *t;

                cur[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        cur[j] = MIN(MIN(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (a[i - 1] != b[j - 1]));
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                cur[j] = MIN(cur[j], prev2[j - 2] + 1);
                }
                t = prev2;
                prev2 = prev;
                prev = cur;
                cur = t;
        }
        return prev[lb];
}

static int unknown_key_error(ParseState *st, const config_setting_t *s, const ConfigKey *table, size_t n) {
        _cleanup_free_ char *known = NULL, *hint = NULL;
        const char *name = config_setting_name(s), *best = NULL;
        size_t best_distance = 3, sz = 0;
        FILE *f;

        f = open_memstream(&known, &sz);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t d = string_distance(name, table[i].name);

                fprintf(f, "%s%s", i > 0 ? ", " : "", table[i].name);
                /* A distance as long as the key itself would "suggest" any short key. */
                if (d < best_distance && d < strlen(table[i].name)) {
                        best = table[i].name;
                        best_distance = d;
                }
        }
        if (fclose(f) != 0 || !known)
                return -ENOMEM;

        if (best && asprintf(&hint, " (did you mean '%s'?)", best) < 0)
                return -ENOMEM;

        return parse_error(st, s, "unknown key '%s'%s; known keys: %s", name, strempty(hint), known);
}

/* Calls the parser of every member of group; reports unknown keys. Returns -EINVAL when anything was
 * wrong, after looking at every member, so one load reports all problems at once. */
static int parse_table(ParseState *st, const config_setting_t *group, const ConfigKey *table, size_t n,
                       void *object) {
        int ret = 0, r;

        for (int i = 0; i < config_setting_length(group); i++) {
                const config_setting_t *s = config_setting_get_elem(group, i);
                const ConfigKey *k = NULL;

                for (size_t j = 0; j < n; j++)
                        if (streq(table[j].name, config_setting_name(s))) {
                                k = table + j;
                                break;
                        }

                if (!k)
                        r = unknown_key_error(st, s, table, n);
                else if (k->parse)
                        r = k->parse(st, s, (uint8_t *) object + k->offset);
                else
                        r = 0;
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        ret = r;
        }
        return ret;
}

/* ---- typed values ---- */

static int setting_get_string(ParseState *st, const config_setting_t *s, const char **ret) {
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return parse_error(st, s, "'%s': expected a string, got %s",
                                   config_setting_name(s), setting_type_name(s));
        *ret = strempty(config_setting_get_string(s));
        return 0;
}

static int setting_get_integer(ParseState *st, const config_setting_t *s, long long min, long long max,
                               long long *ret) {
        long long v = 0;

        if (!setting_type_is(s, CONFIG_TYPE_INT, CONFIG_TYPE_INT64))
                return parse_error(st, s, "'%s': expected an integer, got %s",
                                   config_setting_name(s), setting_type_name(s));
        v = config_setting_get_int64(s);
        if (v < min || v > max)
                return parse_error(st, s, "'%s': %lld is out of range, expected %lld…%lld",
                                   config_setting_name(s), v, min, max);
        *ret = v;
        return 0;
}

/* An array [ "a", "b" ] or a list ( "a", "b" ) of strings. */
static int setting_get_strv(ParseState *st, const config_setting_t *s, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        int r;

        if (!setting_type_is(s, CONFIG_TYPE_ARRAY, CONFIG_TYPE_LIST))
                return parse_error(st, s, "'%s': expected an array of strings [ \"...\", ... ], got %s",
                                   config_setting_name(s), setting_type_name(s));

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        for (int i = 0; i < config_setting_length(s); i++) {
                const config_setting_t *e = config_setting_get_elem(s, i);

                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                        return parse_error(st, e, "'%s': element %i: expected a string, got %s",
                                           config_setting_name(s), i + 1, setting_type_name(e));
                r = list_append_take(&l, &n, strdup(strempty(config_setting_get_string(e))));
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(l);
        return 0;
}

static int parse_string(ParseState *st, const config_setting_t *s, void *data) {
        char **p = data;
        const char *v = NULL;
        char *c;
        int r;

        r = setting_get_string(st, s, &v);
        if (r < 0)
                return r;
        c = strdup(v);
        if (!c)
                return -ENOMEM;
        free(*p);
        *p = c;
        return 0;
}

static int parse_nonempty_string(ParseState *st, const config_setting_t *s, void *data) {
        const char *v = NULL;
        int r;

        r = setting_get_string(st, s, &v);
        if (r < 0)
                return r;
        if (isempty(v))
                return parse_error(st, s, "'%s': must not be empty", config_setting_name(s));
        return parse_string(st, s, data);
}

static int parse_absolute_path(ParseState *st, const config_setting_t *s, void *data) {
        const char *v = NULL;
        int r;

        r = setting_get_string(st, s, &v);
        if (r < 0)
                return r;
        if (v[0] != '/')
                return parse_error(st, s, "'%s': '%s' is not an absolute path", config_setting_name(s), v);
        return parse_string(st, s, data);
}

static int parse_database(ParseState *st, const config_setting_t *s, void *data) {
        const char *v = NULL;
        int r;

        r = setting_get_string(st, s, &v);
        if (r < 0)
                return r;
        /* A PostgreSQL URI selects that backend (db.h); anything else is a SQLite file. */
        if (v[0] != '/' && !streq(v, ":memory:") && !db_location_is_postgresql(v))
                return parse_error(st, s, "'%s': '%s' is neither an absolute path, \":memory:\" nor a "
                                   "postgresql:// URI", config_setting_name(s), v);
        return parse_string(st, s, data);
}

static int parse_bool(ParseState *st, const config_setting_t *s, void *data) {
        bool *b = data;

        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                return parse_error(st, s, "'%s': expected a boolean (true or false), got %s",
                                   config_setting_name(s), setting_type_name(s));
        *b = config_setting_get_bool(s);
        return 0;
}

static int parse_unsigned(ParseState *st, const config_setting_t *s, void *data) {
        unsigned *u = data;
        long long v = 0;
        int r;

        r = setting_get_integer(st, s, 0, INT_MAX, &v);
        if (r < 0)
                return r;
        *u = (unsigned) v;
        return 0;
}

/* A size in bytes, at least 1 KiB. */
static int parse_size(ParseState *st, const config_setting_t *s, void *data) {
        uint64_t *u = data;
        long long v = 0;
        int r;

        r = setting_get_integer(st, s, 1024, INT64_MAX, &v);
        if (r < 0)
                return r;
        *u = (uint64_t) v;
        return 0;
}

static int parse_start_limit(ParseState *st, const config_setting_t *s, void *data) {
        int *i = data;
        long long v = 0;
        int r;

        r = setting_get_integer(st, s, 1, INT_MAX, &v);
        if (r < 0)
                return r;
        *i = (int) v;
        return 0;
}

static int setting_get_duration(ParseState *st, const config_setting_t *s, usec_t *ret) {
        const char *v = NULL;
        int r;

        r = setting_get_string(st, s, &v);
        if (r < 0)
                return r;
        r = timespan_parse(v, ret);
        if (r < 0)
                return parse_error(st, s, "'%s': invalid duration '%s' (expected a time span such as \"90s\", "
                                   "\"5min\", \"1h 30min\" or \"infinity\")", config_setting_name(s), v);
        return 0;
}

/* Any duration; "infinity" means never. */
static int parse_duration(ParseState *st, const config_setting_t *s, void *data) {
        return setting_get_duration(st, s, data);
}

/* As systemd's TimeoutSec=: 0 turns the timeout off, just like "infinity". */
static int parse_timeout(ParseState *st, const config_setting_t *s, void *data) {
        usec_t *u = data;
        int r;

        r = setting_get_duration(st, s, u);
        if (r < 0)
                return r;
        if (*u == 0)
                *u = USEC_INFINITY;
        return 0;
}

static int parse_finite_duration(ParseState *st, const config_setting_t *s, void *data) {
        usec_t *u = data, v = 0;
        int r;

        r = setting_get_duration(st, s, &v);
        if (r < 0)
                return r;
        if (v == USEC_INFINITY)
                return parse_error(st, s, "'%s': must be finite", config_setting_name(s));
        *u = v;
        return 0;
}

static int parse_node_timeout(ParseState *st, const config_setting_t *s, void *data) {
        usec_t *u = data, v = 0;
        int r;

        r = setting_get_duration(st, s, &v);
        if (r < 0)
                return r;
        /* The heartbeat runs every node_timeout / 7: below a second, a busy database or loop would be taken
         * for a dead node. */
        if (v == USEC_INFINITY || v < CONFIG_NODE_TIMEOUT_MIN)
                return parse_error(st, s, "'%s': must be finite and at least 1s", config_setting_name(s));
        *u = v;
        return 0;
}

static int parse_node_name(ParseState *st, const config_setting_t *s, void *data) {
        const char *v = NULL;
        int r;

        r = setting_get_string(st, s, &v);
        if (r < 0)
                return r;
        if (!config_job_name_is_valid(v))
                return parse_error(st, s, "'%s': invalid node name '%s' (1 to %d characters of [A-Za-z0-9_.-], "
                                   "not \".\" or \"..\")", config_setting_name(s), v, JOB_NAME_MAX);
        return parse_string(st, s, data);
}

static int parse_job_name(ParseState *st, const config_setting_t *s, void *data) {
        const char *v = NULL;
        int r;

        r = setting_get_string(st, s, &v);
        if (r < 0)
                return r;
        if (!config_job_name_is_valid(v))
                return parse_error(st, s, "'%s': invalid name '%s' (allowed: letters, digits, '_', '.', '-'; "
                                   "at most %d bytes)", config_setting_name(s), v, JOB_NAME_MAX);
        return parse_string(st, s, data);
}

static int parse_overlap(ParseState *st, const config_setting_t *s, void *data) {
        JobOverlap *o = data, v;
        const char *t = NULL;
        int r;

        r = setting_get_string(st, s, &t);
        if (r < 0)
                return r;
        v = job_overlap_from_string(t);
        if (v < 0)
                return parse_error(st, s, "'%s': unknown value '%s' (expected \"skip\", \"queue\" or \"allow\")",
                                   config_setting_name(s), t);
        *o = v;
        return 0;
}

/* "local" (Spring's LocalDateTime) or "utc". */
static int parse_timestamps(ParseState *st, const config_setting_t *s, void *data) {
        bool *utc = data;
        const char *t = NULL;
        int r;

        r = setting_get_string(st, s, &t);
        if (r < 0)
                return r;
        if (streq(t, "local"))
                *utc = false;
        else if (streq(t, "utc"))
                *utc = true;
        else
                return parse_error(st, s, "'%s': unknown value '%s' (expected \"local\" or \"utc\")",
                                   config_setting_name(s), t);
        return 0;
}

static int parse_incrementer(ParseState *st, const config_setting_t *s, void *data) {
        JobIncrementer *i = data;
        const char *t = NULL;
        int r;

        r = setting_get_string(st, s, &t);
        if (r < 0)
                return r;
        /* "none" is what absence means; accepting it as a value would only add a second spelling. */
        if (!streq(t, "run.id"))
                return parse_error(st, s, "'%s': unknown incrementer '%s' (the only one is \"run.id\")",
                                   config_setting_name(s), t);
        *i = JOB_INCREMENTER_RUN_ID;
        return 0;
}

static int parse_context_format(ParseState *st, const config_setting_t *s, void *data) {
        ContextFormat *f = data, v;
        const char *t = NULL;
        int r;

        r = setting_get_string(st, s, &t);
        if (r < 0)
                return r;
        v = context_format_from_string(t);
        if (v < 0)
                return parse_error(st, s, "'%s': unknown format '%s' (expected \"json\", \"java\" or \"jackson\")",
                                   config_setting_name(s), t);
        *f = v;
        return 0;
}

static int parse_environment(ParseState *st, const config_setting_t *s, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        char ***env = data;
        int ret = 0, r;

        r = setting_get_strv(st, s, &l);
        if (r < 0)
                return r;

        for (size_t i = 0; l[i]; i++) {
                const char *eq = strchr(l[i], '=');
                const config_setting_t *e = config_setting_get_elem(s, i);

                if (!eq)
                        r = parse_error(st, e, "'%s': '%s' is not of the form NAME=value",
                                        config_setting_name(s), l[i]);
                else if (!env_name_is_valid(l[i], eq - l[i]))
                        r = parse_error(st, e, "'%s': invalid variable name '%.*s' (expected [A-Za-z_][A-Za-z0-9_]*)",
                                        config_setting_name(s), (int) (eq - l[i]), l[i]);
                else if (strneq(l[i], "BATCH_", 6))
                        /* The executor passes BATCH_JOB_NAME, BATCH_RESTART, ... to steps; a job must not
                         * be able to fake them. */
                        r = parse_error(st, e, "'%s': variable '%.*s': names starting with BATCH_ are reserved for batchd",
                                        config_setting_name(s), (int) (eq - l[i]), l[i]);
                else {
                        r = 0;
                        for (size_t j = 0; j < i; j++)
                                if (strneq(l[j], l[i], eq - l[i] + 1)) {
                                        r = parse_error(st, e, "'%s': variable '%.*s' is set twice",
                                                        config_setting_name(s), (int) (eq - l[i]), l[i]);
                                        break;
                                }
                }
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        ret = r;
        }
        if (ret < 0)
                return ret;

        strv_free(*env);
        *env = TAKE_PTR(l);
        return 0;
}

static int parse_parameters(ParseState *st, const config_setting_t *s, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        JobParameters *p = data;
        int ret = 0, r;

        r = setting_get_strv(st, s, &l);
        if (r < 0)
                return r;

        for (size_t i = 0; l[i]; i++) {
                const config_setting_t *e = config_setting_get_elem(s, i);
                _cleanup_(job_parameters_done) JobParameters one = JOB_PARAMETERS_NULL;
                _cleanup_free_ char *error = NULL;

                /* Parsed alone first, to learn the name: job_parameters_parse_argument() silently
                 * replaces a parameter of the same name, and a default given twice is a mistake. */
                r = job_parameters_parse_argument(&one, l[i], &error);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && one.n == 1 && job_parameters_get(p, one.items[0].name))
                        r = parse_error(st, e, "'%s': parameter '%s' is given twice",
                                        config_setting_name(s), one.items[0].name);
                else if (r < 0)
                        r = parse_error(st, e, "'%s': %s", config_setting_name(s),
                                        error ?: "invalid job parameter");
                else {
                        error = mfree(error);
                        r = job_parameters_parse_argument(p, l[i], &error);
                        if (r < 0 && r != -ENOMEM)
                                r = parse_error(st, e, "'%s': %s", config_setting_name(s),
                                                error ?: "invalid job parameter");
                }
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        ret = r;
        }
        return ret;
}

static int parse_schedule(ParseState *st, const config_setting_t *s, void *data) {
        JobConfig *j = data;
        _cleanup_(calendar_spec_freep) CalendarSpec *c = NULL;
        _cleanup_free_ char *error = NULL;
        const char *v = NULL;
        char *copy;
        int r;

        r = setting_get_string(st, s, &v);
        if (r < 0)
                return r;
        r = calendar_spec_from_string(v, &c, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return parse_error(st, s, "'%s': invalid calendar expression '%s': %s",
                                   config_setting_name(s), v, error ?: "cannot parse it");
        copy = strdup(v);
        if (!copy)
                return -ENOMEM;

        free(j->schedule);
        j->schedule = copy;
        calendar_spec_free(j->calendar);
        j->calendar = TAKE_PTR(c);
        return 0;
}

/* "day" (a date), "day(date)" or "fired(datetime)": the command-line syntax for a typed name. */
static int parse_schedule_parameter(ParseState *st, const config_setting_t *s, void *data) {
        JobConfig *j = data;
        _cleanup_free_ char *name = NULL;
        JobParameterType t = JOB_PARAMETER_DATE;
        const char *v = NULL, *paren;
        size_t n;
        int r;

        r = setting_get_string(st, s, &v);
        if (r < 0)
                return r;

        paren = strchr(v, '(');
        if (paren) {
                if (streq(paren, "(date)"))
                        t = JOB_PARAMETER_DATE;
                else if (streq(paren, "(datetime)"))
                        t = JOB_PARAMETER_DATETIME;
                else
                        return parse_error(st, s, "'%s': '%s': the fire time can only be bound as (date) or (datetime)",
                                           config_setting_name(s), v);
                n = paren - v;
        } else
                n = strlen(v);

        name = strndup(v, n);
        if (!name)
                return -ENOMEM;
        /* The same characters as job names: safe inside command lines and "${name}" references, and what
         * Spring Batch users write anyway ("schedule.date", "run.day"). A leading '-' would read as
         * "non-identifying", and the fire time must identify the instance. */
        if (!config_job_name_is_valid(name) || name[0] == '-')
                return parse_error(st, s, "'%s': invalid parameter name '%s' (allowed: letters, digits, '_', '.', "
                                   "'-' but not first; at most %d bytes)", config_setting_name(s), name,
                                   JOB_PARAMETER_NAME_MAX);

        free(j->schedule_parameter);
        j->schedule_parameter = TAKE_PTR(name);
        j->schedule_parameter_type = t;
        return 0;
}

/* ---- users and groups ---- */

static int pw_buffer_size(int name) {
        long n = sysconf(name);

        return n > 0 && n < 1024 * 1024 ? (int) n : 4096;
}

/* Returns -ESRCH for an unknown user. */
static int user_lookup(const char *name, uid_t *ret_uid, gid_t *ret_gid) {
        for (size_t sz = pw_buffer_size(_SC_GETPW_R_SIZE_MAX);; sz *= 2) {
                _cleanup_free_ char *buf = malloc(sz);
                struct passwd pw, *result;
                int r;

                if (!buf)
                        return -ENOMEM;
                r = getpwnam_r(name, &pw, buf, sz, &result);
                if (r == ERANGE && sz < 16 * 1024 * 1024)
                        continue;
                if (r != 0)
                        return -r;
                if (!result)
                        return -ESRCH;
                *ret_uid = pw.pw_uid;
                *ret_gid = pw.pw_gid;
                return 0;
        }
}

static int group_lookup(const char *name, gid_t *ret) {
        for (size_t sz = pw_buffer_size(_SC_GETGR_R_SIZE_MAX);; sz *= 2) {
                _cleanup_free_ char *buf = malloc(sz);
                struct group gr, *result;
                int r;

                if (!buf)
                        return -ENOMEM;
                r = getgrnam_r(name, &gr, buf, sz, &result);
                if (r == ERANGE && sz < 16 * 1024 * 1024)
                        continue;
                if (r != 0)
                        return -r;
                if (!result)
                        return -ESRCH;
                *ret = gr.gr_gid;
                return 0;
        }
}

static int group_name_from_gid(gid_t gid, char **ret) {
        for (size_t sz = pw_buffer_size(_SC_GETGR_R_SIZE_MAX);; sz *= 2) {
                _cleanup_free_ char *buf = malloc(sz);
                struct group gr, *result;
                int r;

                if (!buf)
                        return -ENOMEM;
                r = getgrgid_r(gid, &gr, buf, sz, &result);
                if (r == ERANGE && sz < 16 * 1024 * 1024)
                        continue;
                if (r != 0)
                        return -r;
                if (!result)
                        return -ESRCH;
                *ret = strdup(gr.gr_name);
                return *ret ? 0 : -ENOMEM;
        }
}

static int job_resolve_credentials(ParseState *st, const config_setting_t *group, JobConfig *j) {
        const config_setting_t *user_setting = config_setting_get_member(group, "user");
        const config_setting_t *group_setting = config_setting_get_member(group, "group");
        uid_t daemon_uid = st->ctx->options->daemon_uid;
        int r;

        /* Unparsable values were reported already. */
        if ((user_setting && !j->user) || (group_setting && !j->group))
                return -EINVAL;

        if (!j->user) {
                if (daemon_uid == 0)
                        /* Defaulting to root would run every forgotten job with full privileges, and
                         * defaulting to "nobody" would make nobody own whatever the job writes (and any
                         * two such jobs able to tamper with each other). Make the admin choose. */
                        return parse_error(st, group, "no 'user' set; batchd runs as root and does not pick "
                                           "one: set user = \"root\" to run the job as root, or name an "
                                           "unprivileged user");
                if (j->group)
                        return parse_error(st, group_setting, "'group': batchd runs unprivileged (uid %u) "
                                           "and cannot switch groups", (unsigned) daemon_uid);
                j->uid = daemon_uid;
                j->gid = (gid_t) -1;
                return 0;
        }

        r = user_lookup(j->user, &j->uid, &j->gid);
        if (r == -ENOMEM)
                return r;
        if (r == -ESRCH)
                return parse_error(st, user_setting, "'user': unknown user '%s'", j->user);
        if (r < 0)
                return parse_error(st, user_setting, "'user': cannot look up user '%s': %s", j->user,
                                   strerror(-r));

        if (daemon_uid != 0 && j->uid != daemon_uid)
                return parse_error(st, user_setting, "'user': cannot run as '%s' (uid %u): batchd runs "
                                   "unprivileged as uid %u and cannot switch users", j->user,
                                   (unsigned) j->uid, (unsigned) daemon_uid);

        if (j->group) {
                if (daemon_uid != 0)
                        return parse_error(st, group_setting, "'group': batchd runs unprivileged (uid %u) "
                                           "and cannot switch groups", (unsigned) daemon_uid);
                r = group_lookup(j->group, &j->gid);
                if (r == -ENOMEM)
                        return r;
                if (r == -ESRCH)
                        return parse_error(st, group_setting, "'group': unknown group '%s'", j->group);
                if (r < 0)
                        return parse_error(st, group_setting, "'group': cannot look up group '%s': %s",
                                           j->group, strerror(-r));
        } else if (daemon_uid == 0) {
                /* The user's primary group; its name is only for display, so a gid without one is fine. */
                r = group_name_from_gid(j->gid, &j->group);
                if (r == -ENOMEM)
                        return r;
        }
        return 0;
}

/* ---- steps and jobs ---- */

static void step_config_done(StepConfig *s) {
        free(s->name);
        strv_free(s->exec);
}

static JobConfig *job_config_free(JobConfig *j) {
        if (!j)
                return NULL;

        free(j->name);
        free(j->description);
        job_parameters_done(&j->parameters);
        free(j->user);
        free(j->group);
        free(j->working_directory);
        strv_free(j->environment);
        for (size_t i = 0; i < j->n_steps; i++)
                step_config_done(j->steps + i);
        free(j->steps);
        free(j->schedule);
        calendar_spec_free(j->calendar);
        free(j->schedule_parameter);
        strv_free(j->on_failure.exec);
        free(j->on_failure.unit);
        strv_free(j->on_success.exec);
        free(j->on_success.unit);
        free(j->source_file);
        return mfree(j);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(JobConfig *, job_config_free);

static JobConfig *job_config_new(void) {
        JobConfig *j;

        j = calloc(1, sizeof(JobConfig));
        if (!j)
                return NULL;

        *j = (JobConfig) {
                .restartable = true,
                .parameters = JOB_PARAMETERS_NULL,
                .gid = (gid_t) -1,
                .timeout_usec = USEC_INFINITY,
                .overlap = JOB_OVERLAP_SKIP,
                .incrementer = JOB_INCREMENTER_NONE,
                .schedule_parameter_type = JOB_PARAMETER_DATE,
                .catch_up = 1,
                .enabled = true,
                .alert_timeout_usec = CONFIG_ALERT_TIMEOUT_DEFAULT,
        };
        j->environment = calloc(1, sizeof(char *));
        if (!j->environment)
                return mfree(j);
        return j;
}

static int parse_exec(ParseState *st, const config_setting_t *s, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        char ***exec = data;
        int r;

        r = setting_get_strv(st, s, &l);
        if (r < 0)
                return r;
        if (!l[0])
                return parse_error(st, s, "'%s': must name at least the program to run", config_setting_name(s));
        /* No $PATH search: what runs must not depend on the environment batchd happens to have. */
        if (l[0][0] != '/')
                return parse_error(st, s, "'%s': '%s' is not an absolute path", config_setting_name(s), l[0]);

        strv_free(*exec);
        *exec = TAKE_PTR(l);
        return 0;
}

/* A unit name as systemd accepts it: "name.type" or the template "name@.type" (the execution id becomes the
 * instance), name and type non-empty, systemd's characters only. */
static bool alert_unit_name_is_valid(const char *s) {
        const char *dot, *at;

        if (isempty(s) || strlen(s) > UNIT_NAME_MAX)
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                      strchr(":-_.\\@", *c)))
                        return false;
        dot = strrchr(s, '.');
        if (!dot || dot == s || !dot[1] || strchr(dot, '@'))
                return false;
        at = strchr(s, '@');
        if (at && (at == s || at + 1 != dot || strchr(at + 1, '@')))
                return false;   /* only templates: an instance of our own choosing would be overwritten */
        return true;
}

static int parse_alert_unit(ParseState *st, const config_setting_t *s, void *data) {
        const char *v = NULL;
        int r;

        r = setting_get_string(st, s, &v);
        if (r < 0)
                return r;
        if (!alert_unit_name_is_valid(v))
                return parse_error(st, s, "'%s': '%s' is not a unit name (\"name.service\", or a template "
                                   "\"name@.service\" started with the execution id as its instance)",
                                   config_setting_name(s), v);
        return parse_string(st, s, data);
}

static int parse_exec(ParseState *st, const config_setting_t *s, void *data);

static const ConfigKey alert_keys[] = {
        { "exec", parse_exec,       offsetof(JobAlert, exec) },
        { "unit", parse_alert_unit, offsetof(JobAlert, unit) },
};

/* on_failure = [ "/usr/bin/prog", "arg" ];  or  on_failure = { exec = [ ... ]; };  or
 * on_failure = { unit = "notify@.service"; }; */
static int parse_alert(ParseState *st, const config_setting_t *s, void *data) {
        JobAlert *a = data;
        int r;

        if (setting_type_is(s, CONFIG_TYPE_ARRAY, CONFIG_TYPE_LIST))
                return parse_exec(st, s, &a->exec);
        if (config_setting_type(s) != CONFIG_TYPE_GROUP)
                return parse_error(st, s, "'%s': expected a command [ \"/path/to/program\", ... ] or a group "
                                   "{ unit = \"name@.service\"; }, got %s", config_setting_name(s),
                                   setting_type_name(s));
        r = parse_table(st, s, alert_keys, ELEMENTSOF(alert_keys), a);
        if (r < 0)
                return r;
        if (!!a->exec == !!a->unit)
                return parse_error(st, s, "'%s': needs exactly one of 'exec' and 'unit'", config_setting_name(s));
        return 0;
}

static const ConfigKey step_keys[] = {
        { "name",                    NULL,            0                                              },
        { "exec",                    parse_exec,      offsetof(StepConfig, exec)                     },
        { "timeout",                 parse_timeout,   offsetof(StepConfig, timeout_usec)             },
        { "allow_start_if_complete", parse_bool,      offsetof(StepConfig, allow_start_if_complete)  },
        { "start_limit",             parse_start_limit, offsetof(StepConfig, start_limit)            },
};

static int parse_step(ParseState *job_st, const config_setting_t *group, size_t index, StepConfig *step) {
        _cleanup_free_ char *what = NULL;
        const config_setting_t *name;
        ParseState st = { .ctx = job_st->ctx, .file = job_st->file };
        int ret = 0, r;

        *step = (StepConfig) {
                .timeout_usec = USEC_INFINITY,
                .start_limit = STEP_START_LIMIT_UNLIMITED,
                .line = setting_line(group),
        };

        if (asprintf(&what, "%s: step #%zu", job_st->what, index + 1) < 0)
                return -ENOMEM;
        st.what = what;

        name = config_setting_get_member(group, "name");
        if (!name)
                ret = parse_error(&st, group, "missing 'name'");
        else
                ret = parse_job_name(&st, name, &step->name);
        if (ret == -ENOMEM)
                return ret;

        if (step->name) {
                what = mfree(what);
                if (asprintf(&what, "%s: step '%s'", job_st->what, step->name) < 0)
                        return -ENOMEM;
                st.what = what;
        }

        r = parse_table(&st, group, step_keys, ELEMENTSOF(step_keys), step);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                ret = r;

        if (!config_setting_get_member(group, "exec")) {
                r = parse_error(&st, group, "missing 'exec'");
                if (r == -ENOMEM)
                        return r;
                ret = r;
        }
        return ret;
}

static int parse_steps(ParseState *st, const config_setting_t *s, void *data) {
        JobConfig *j = data;
        int n, ret = 0, r;

        if (config_setting_type(s) != CONFIG_TYPE_LIST)
                return parse_error(st, s, "'%s': expected a list of groups ( { ... }, ... ), got %s",
                                   config_setting_name(s), setting_type_name(s));
        n = config_setting_length(s);
        if (n == 0)
                return parse_error(st, s, "'%s': is empty; a job needs at least one step", config_setting_name(s));

        j->steps = calloc(n, sizeof(StepConfig));
        if (!j->steps)
                return -ENOMEM;

        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, i);
                StepConfig *step = j->steps + j->n_steps;

                if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
                        r = parse_error(st, e, "'%s': element %i: expected a group { ... }, got %s",
                                        config_setting_name(s), i + 1, setting_type_name(e));
                        if (r == -ENOMEM)
                                return r;
                        ret = r;
                        continue;
                }

                r = parse_step(st, e, i, step);
                j->n_steps++;   /* so that it is freed, whatever happened */
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        ret = r;

                for (size_t k = 0; step->name && k + 1 < j->n_steps; k++)
                        if (j->steps[k].name && streq(j->steps[k].name, step->name)) {
                                r = parse_error(st, e, "step '%s': duplicate step name, first defined at line %u",
                                                step->name, j->steps[k].line);
                                if (r == -ENOMEM)
                                        return r;
                                ret = r;
                                break;
                        }
        }
        return ret;
}

static const ConfigKey job_keys[] = {
        { "name",               NULL,                     0                                         },
        { "description",        parse_string,             offsetof(JobConfig, description)          },
        { "restartable",        parse_bool,               offsetof(JobConfig, restartable)          },
        { "parameters",         parse_parameters,         offsetof(JobConfig, parameters)           },
        { "user",               parse_nonempty_string,    offsetof(JobConfig, user)                 },
        { "group",              parse_nonempty_string,    offsetof(JobConfig, group)                },
        { "working_directory",  parse_absolute_path,      offsetof(JobConfig, working_directory)    },
        { "environment",        parse_environment,        offsetof(JobConfig, environment)          },
        { "timeout",            parse_timeout,            offsetof(JobConfig, timeout_usec)         },
        { "steps",              parse_steps,              0                                         },
        { "schedule",           parse_schedule,           0                                         },
        { "persistent",         parse_bool,               offsetof(JobConfig, persistent)           },
        { "randomized_delay",   parse_finite_duration,    offsetof(JobConfig, randomized_delay_usec)},
        { "overlap",            parse_overlap,            offsetof(JobConfig, overlap)              },
        { "incrementer",        parse_incrementer,        offsetof(JobConfig, incrementer)          },
        { "schedule_parameter", parse_schedule_parameter, 0                                         },
        { "catch_up",           parse_unsigned,           offsetof(JobConfig, catch_up)             },
        { "enabled",            parse_bool,               offsetof(JobConfig, enabled)              },
        { "on_failure",         parse_alert,              offsetof(JobConfig, on_failure)           },
        { "on_success",         parse_alert,              offsetof(JobConfig, on_success)           },
        { "alert_timeout",      parse_timeout,            offsetof(JobConfig, alert_timeout_usec)   },
};

/* Cross-key rules, checked once every key has been parsed. */
static int job_verify(ParseState *st, const config_setting_t *group, JobConfig *j) {
        static const char *const schedule_only[] = {
                "persistent", "randomized_delay", "overlap", "schedule_parameter", "catch_up", "enabled",
        };
        const config_setting_t *s;
        const JobParameter *p;
        int ret = 0, r;

        if (!config_setting_get_member(group, "steps")) {
                r = parse_error(st, group, "missing 'steps'; a job needs at least one step, "
                                "steps = ( { name = \"...\"; exec = [ \"/path/to/program\" ]; } )");
                if (r == -ENOMEM)
                        return r;
                ret = r;
        }

        /* A typo in "schedule" should not leave its companions silently doing nothing. */
        if (!config_setting_get_member(group, "schedule"))
                for (size_t i = 0; i < ELEMENTSOF(schedule_only); i++) {
                        s = config_setting_get_member(group, schedule_only[i]);
                        if (!s)
                                continue;
                        r = parse_error(st, s, "'%s': only applies to scheduled jobs, but there is no 'schedule'",
                                        schedule_only[i]);
                        if (r == -ENOMEM)
                                return r;
                        ret = r;
                }

        s = config_setting_get_member(group, "catch_up");
        if (s && j->schedule && !j->persistent) {
                r = parse_error(st, s, "'catch_up': only applies with persistent = true");
                if (r == -ENOMEM)
                        return r;
                ret = r;
        }

        s = config_setting_get_member(group, "schedule_parameter");
        if (s && j->schedule_parameter) {
                p = job_parameters_get(&j->parameters, j->schedule_parameter);
                if (p && (p->type != j->schedule_parameter_type || !p->identifying))
                        r = parse_error(st, s, "'schedule_parameter': '%s' is bound to the fire time as an identifying "
                                        "%s, but 'parameters' declares it as a%s %s", j->schedule_parameter,
                                        job_parameter_type_to_string(j->schedule_parameter_type),
                                        p->identifying ? "n identifying" : " non-identifying",
                                        job_parameter_type_to_string(p->type));
                else if (j->incrementer == JOB_INCREMENTER_RUN_ID && streq(j->schedule_parameter, "run.id"))
                        r = parse_error(st, s, "'schedule_parameter': 'run.id' is set by the run.id incrementer");
                /* Documented behaviour, but a trap: every fire after the first of a day finds the day's
                 * instance complete and does not run. */
                else if (j->schedule_parameter_type == JOB_PARAMETER_DATE && calendar_spec_is_sub_daily(j->calendar))
                        r = parse_warning(st, s, "'schedule_parameter': '%s' is a date, but schedule '%s' fires more "
                                          "than once a day: every fire after the first of a day finds that day's "
                                          "instance complete and does not run; bind the fire time as "
                                          "'%s(datetime)' to run every fire", j->schedule_parameter,
                                          j->schedule, j->schedule_parameter);
                else
                        r = 0;
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        ret = r;
        }

        s = config_setting_get_member(group, "incrementer");
        p = job_parameters_get(&j->parameters, "run.id");
        if (s && j->incrementer == JOB_INCREMENTER_RUN_ID && p && p->type != JOB_PARAMETER_LONG) {
                r = parse_error(st, s, "'incrementer': run.id is a long, but 'parameters' declares it as a %s",
                                job_parameter_type_to_string(p->type));
                if (r == -ENOMEM)
                        return r;
                ret = r;
        }

        r = job_resolve_credentials(st, group, j);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                ret = r;

        return ret;
}

static int parse_job(LoadContext *ctx, const char *file, const config_setting_t *group, size_t index,
                     JobConfig **ret) {
        _cleanup_(job_config_freep) JobConfig *j = NULL;
        _cleanup_free_ char *what = NULL;
        const config_setting_t *name;
        ParseState st = { .ctx = ctx, .file = file };
        int result = 0, r;

        j = job_config_new();
        if (!j)
                return -ENOMEM;

        /* Messages say "job #N" until the job has a valid name. */
        if (asprintf(&what, "job #%zu", index + 1) < 0)
                return -ENOMEM;
        st.what = what;

        name = config_setting_get_member(group, "name");
        if (!name)
                result = parse_error(&st, group, "missing 'name'");
        else
                result = parse_job_name(&st, name, &j->name);
        if (result == -ENOMEM)
                return result;

        if (j->name) {
                what = mfree(what);
                if (asprintf(&what, "job '%s'", j->name) < 0)
                        return -ENOMEM;
                st.what = what;
        }

        r = parse_table(&st, group, job_keys, ELEMENTSOF(job_keys), j);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                result = r;

        r = job_verify(&st, group, j);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                result = r;

        j->source_file = strdup(file);
        if (!j->source_file)
                return -ENOMEM;
        j->source_line = setting_line(group);

        if (result < 0)
                return result;
        *ret = TAKE_PTR(j);
        return 0;
}

/* ---- files ---- */

static int check_file_stat(LoadContext *ctx, const char *path, const struct stat *st, bool directory) {
        const char *kind = directory ? "directory" : "file";
        uid_t owner = ctx->options->owner_uid;

        if (directory ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
                return context_add_error(ctx, path, 0, NULL, "refusing to load: not a %s",
                                         directory ? "directory" : "regular file");

        /* As cron and sudo do: whoever can write the configuration can run anything as any job's user. */
        if (st->st_mode & (S_IWGRP | S_IWOTH))
                return context_add_error(ctx, path, 0, NULL, "refusing to load: %s is writable by group/others "
                                         "(mode %04o)", kind, (unsigned) (st->st_mode & 07777));
        if (st->st_uid != owner) {
                if (owner == 0)
                        return context_add_error(ctx, path, 0, NULL, "refusing to load: %s is owned by uid %u, "
                                                 "not by root", kind, (unsigned) st->st_uid);
                return context_add_error(ctx, path, 0, NULL, "refusing to load: %s is owned by uid %u, not by "
                                         "uid %u", kind, (unsigned) st->st_uid, (unsigned) owner);
        }
        return 0;
}

/* Opens without following symlinks and checks the opened file itself, so nothing can be swapped in
 * between the check and the read. Returns -ENOENT without a message when the file does not exist. */
static int config_file_open(LoadContext *ctx, int dir_fd, const char *name, const char *path, uint64_t size_max,
                            FILE **ret) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        FILE *f;
        int r;

        /* O_NONBLOCK: a FIFO planted under a .conf name must not hang the daemon before fstat() sees it. */
        fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT)
                        return -ENOENT;
                if (errno == ELOOP)
                        return context_add_error(ctx, path, 0, NULL, "refusing to load: file is a symbolic link");
                return context_add_error(ctx, path, 0, NULL, "cannot open: %s", strerror(errno));
        }
        if (fstat(fd, &st) < 0)
                return context_add_error(ctx, path, 0, NULL, "cannot stat: %s", strerror(errno));
        r = check_file_stat(ctx, path, &st, false);
        if (r < 0)
                return r;
        if ((uint64_t) st.st_size > size_max)
                return context_add_error(ctx, path, 0, NULL, "refusing to load: file is %" PRIu64 " bytes, larger "
                                         "than the limit %" PRIu64 " (job_file_size_max in batchd.conf)",
                                         (uint64_t) st.st_size, size_max);

        f = fdopen(fd, "r");
        if (!f)
                return -ENOMEM;
        TAKE_FD(fd);
        *ret = f;
        return 0;
}

/* Returns 1 and the line of the first "@include" outside strings and comments, 2 and the line of the first
 * string value (adjacent literals, which libconfig joins, count as one) longer than CONFIG_VALUE_SIZE_MAX,
 * 0 when there is neither. */
static int scan_for_include(FILE *f, unsigned *ret_line) {
        enum { NORMAL, STRING, STRING_ESCAPE, LINE_COMMENT, BLOCK_COMMENT } state = NORMAL;
        unsigned line = 1, value_line = 0;
        size_t value = 0;
        int c;

        while ((c = getc(f)) != EOF) {
                switch (state) {
                case NORMAL:
                        if (!strchr("\"/# \t\r\n", c))
                                value = 0;   /* any other token ends the string value */
                        if (c == '"') {
                                if (value == 0)
                                        value_line = line;
                                state = STRING;
                        }
                        else if (c == '#')
                                state = LINE_COMMENT;
                        else if (c == '/') {
                                int next = getc(f);

                                if (next == '/')
                                        state = LINE_COMMENT;
                                else if (next == '*')
                                        state = BLOCK_COMMENT;
                                else if (next != EOF)
                                        ungetc(next, f);
                        } else if (c == '@') {
                                char word[8] = {};

                                /* Anything else after '@' is a syntax error libconfig reports itself. */
                                if (fread(word, 1, 7, f) == 7 && streq(word, "include")) {
                                        *ret_line = line;
                                        return 1;
                                }
                                *ret_line = 0;
                                return 0;
                        }
                        break;
                case STRING:
                        if (c == '\\')
                                state = STRING_ESCAPE;
                        else if (c == '"')
                                state = NORMAL;
                        else if (++value > CONFIG_VALUE_SIZE_MAX) {
                                *ret_line = value_line;
                                return 2;
                        }
                        break;
                case STRING_ESCAPE:
                        state = STRING;
                        break;
                case LINE_COMMENT:
                        if (c == '\n')
                                state = NORMAL;
                        break;
                case BLOCK_COMMENT:
                        if (c == '*') {
                                int next = getc(f);

                                if (next == '/')
                                        state = NORMAL;
                                else if (next != EOF)
                                        ungetc(next, f);
                        }
                        break;
                }
                if (c == '\n')
                        line++;
        }
        if (ferror(f))
                return -EIO;
        *ret_line = 0;
        return 0;
}

static int config_file_read(LoadContext *ctx, FILE *f, const char *path, config_t *cfg) {
        unsigned line;
        int r;

        /* libconfig would open included files by name, relative to the current directory, without any of
         * the checks above: refuse the directive instead. */
        r = scan_for_include(f, &line);
        if (r < 0)
                return context_add_error(ctx, path, 0, NULL, "cannot read: %s", strerror(-r));
        if (r == 2)
                return context_add_error(ctx, path, line, NULL, "refusing to load: a string value is longer "
                                         "than the limit of %u bytes", CONFIG_VALUE_SIZE_MAX);
        if (r > 0)
                return context_add_error(ctx, path, line, NULL, "@include is not supported: included files "
                                         "would escape the ownership and permission checks");
        rewind(f);

        if (!config_read(cfg, f))
                return context_add_error(ctx, path, config_error_line(cfg), NULL, "%s",
                                         strna(config_error_text(cfg)));
        return 0;
}

static const JobConfig *job_list_find(JobConfig * const *jobs, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(jobs[i]->name, name))
                        return jobs[i];
        return NULL;
}

static void job_list_free(JobConfig **jobs, size_t n) {
        for (size_t i = 0; i < n; i++)
                job_config_free(jobs[i]);
        free(jobs);
}

static const ConfigKey job_file_keys[] = {
        { "jobs", NULL, 0 },
};

/* Parses one job file. On success returns its jobs; on any error returns -EINVAL and no jobs: a file is
 * taken whole or not at all, so a half-understood file never runs half of its jobs. */
static int job_file_load(LoadContext *ctx, const Config *c, int dir_fd, const char *name, const char *path,
                         JobConfig ***ret_jobs, size_t *ret_n) {
        _cleanup_(config_t_destroyp) config_t cfg;
        _cleanup_fclose_ FILE *f = NULL;
        ParseState st = { .ctx = ctx, .file = path };
        const config_setting_t *list;
        JobConfig **jobs = NULL;
        size_t n = 0;
        int ret = 0, r;

        config_init(&cfg);

        r = config_file_open(ctx, dir_fd, name, path, c->job_file_size_max, &f);
        if (r == -ENOENT)   /* deleted since the directory was read */
                return context_add_error(ctx, path, 0, NULL, "disappeared while loading");
        if (r < 0)
                return r;
        r = config_file_read(ctx, f, path, &cfg);
        if (r < 0)
                return r;

        ret = parse_table(&st, config_root_setting(&cfg), job_file_keys, ELEMENTSOF(job_file_keys), NULL);
        if (ret == -ENOMEM)
                return ret;

        list = config_lookup(&cfg, "jobs");
        if (!list)
                goto finish;   /* an empty (e.g. fully commented out) file is fine */
        if (config_setting_type(list) != CONFIG_TYPE_LIST) {
                r = parse_error(&st, list, "'jobs': expected a list of groups ( { ... }, ... ), got %s",
                                setting_type_name(list));
                if (r == -ENOMEM)
                        return r;
                ret = r;
                goto finish;
        }

        for (int i = 0; i < config_setting_length(list); i++) {
                const config_setting_t *e = config_setting_get_elem(list, i);
                const JobConfig *other;
                JobConfig *j = NULL, **t;

                if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
                        r = parse_error(&st, e, "'jobs': element %i: expected a group { ... }, got %s",
                                        i + 1, setting_type_name(e));
                        if (r == -ENOMEM)
                                goto fail;
                        ret = r;
                        continue;
                }

                r = parse_job(ctx, path, e, i, &j);
                if (r == -ENOMEM)
                        goto fail;
                if (r < 0) {
                        ret = r;
                        continue;
                }

                other = job_list_find(c->jobs, c->n_jobs, j->name) ?: job_list_find(jobs, n, j->name);
                if (other) {
                        ret = context_add_error(ctx, path, j->source_line, NULL, "job '%s': duplicate job name, "
                                                "first defined at %s:%u", j->name, other->source_file,
                                                other->source_line);
                        job_config_free(j);
                        if (ret == -ENOMEM) {
                                r = ret;
                                goto fail;
                        }
                        continue;
                }

                t = reallocarray(jobs, n + 1, sizeof(JobConfig *));
                if (!t) {
                        job_config_free(j);
                        r = -ENOMEM;
                        goto fail;
                }
                jobs = t;
                jobs[n++] = j;
        }

finish:
        if (ret < 0) {
                job_list_free(jobs, n);
                return ret;
        }
        *ret_jobs = jobs;
        *ret_n = n;
        return 0;

fail:
        job_list_free(jobs, n);
        return r;
}

static int config_add_jobs(Config *c, JobConfig **jobs, size_t n) {
        JobConfig **t;

        if (n == 0) {
                free(jobs);
                return 0;
        }
        t = reallocarray(c->jobs, c->n_jobs + n, sizeof(JobConfig *));
        if (!t) {
                job_list_free(jobs, n);
                return -ENOMEM;
        }
        memcpy(t + c->n_jobs, jobs, n * sizeof(JobConfig *));
        c->jobs = t;
        c->n_jobs += n;
        free(jobs);
        return 0;
}

static int string_compare(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

static int jobs_dir_list(LoadContext *ctx, const char *dir, int dir_fd, char ***ret) {
        _cleanup_(dir_closep) DIR *d = NULL;
        _cleanup_strv_free_ char **names = NULL;
        size_t n = 0;
        int fd, r;

        names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;

        fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return context_add_error(ctx, dir, 0, NULL, "cannot read directory: %s", strerror(errno));
        d = fdopendir(fd);
        if (!d) {
                r = errno;
                safe_close(fd);
                return context_add_error(ctx, dir, 0, NULL, "cannot read directory: %s", strerror(r));
        }

        for (;;) {
                struct dirent *de;
                size_t l;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return context_add_error(ctx, dir, 0, NULL, "cannot read directory: %s",
                                                         strerror(errno));
                        break;
                }

                /* Dotfiles cover editor and package manager leftovers such as ".a.conf.swp" and
                 * ".#a.conf"; anything not ending in .conf (a.conf.dpkg-old, a.conf~) is ignored too. */
                l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l <= 5 || !streq(de->d_name + l - 5, ".conf"))
                        continue;

                r = list_append_take(&names, &n, strdup(de->d_name));
                if (r < 0)
                        return r;
        }

        qsort(names, n, sizeof(char *), string_compare);
        *ret = TAKE_PTR(names);
        return 0;
}

static int jobs_dir_load(LoadContext *ctx, Config *c, unsigned jobs_dir_line) {
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_strv_free_ char **names = NULL;
        bool strict = ctx->options->strict, failed = false;
        struct stat st;
        int r;

        dir_fd = open(c->jobs_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0) {
                if (errno == ENOENT && jobs_dir_line == 0)
                        return 0;   /* nothing installed yet */
                if (errno == ENOENT)
                        r = context_add_error(ctx, c->path, jobs_dir_line, NULL, "'jobs_dir': %s does not exist",
                                              c->jobs_dir);
                else if (errno == ELOOP)
                        r = context_add_error(ctx, c->jobs_dir, 0, NULL, "refusing to load: directory is a "
                                              "symbolic link");
                else if (errno == ENOTDIR)
                        r = context_add_error(ctx, c->jobs_dir, 0, NULL, "refusing to load: not a directory");
                else
                        r = context_add_error(ctx, c->jobs_dir, 0, NULL, "cannot open: %s", strerror(errno));
                return r == -ENOMEM || strict ? r : 0;
        }

        if (fstat(dir_fd, &st) < 0)
                r = context_add_error(ctx, c->jobs_dir, 0, NULL, "cannot stat: %s", strerror(errno));
        else
                r = check_file_stat(ctx, c->jobs_dir, &st, true);
        if (r < 0)
                return r == -ENOMEM || strict ? r : 0;

        r = jobs_dir_list(ctx, c->jobs_dir, dir_fd, &names);
        if (r < 0)
                return r == -ENOMEM || strict ? r : 0;

        for (size_t i = 0; names[i]; i++) {
                _cleanup_free_ char *path = NULL;
                JobConfig **jobs = NULL;
                size_t n = 0;
                size_t l = strlen(c->jobs_dir);

                if (asprintf(&path, "%s%s%s", c->jobs_dir, l > 0 && c->jobs_dir[l - 1] == '/' ? "" : "/",
                             names[i]) < 0)
                        return -ENOMEM;

                r = job_file_load(ctx, c, dir_fd, names[i], path, &jobs, &n);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        failed = true;
                        /* In strict mode the whole load fails and the caller says so; at startup, say
                         * which jobs are missing because of it. */
                        if (!strict) {
                                r = context_add_error(ctx, path, 0, NULL, "skipped: none of its jobs were loaded");
                                if (r == -ENOMEM)
                                        return r;
                        }
                        continue;
                }

                r = config_add_jobs(c, jobs, n);
                if (r < 0)
                        return r;
        }

        return failed && strict ? -EINVAL : 0;
}

static const ConfigKey main_keys[] = {
        { "database",                  parse_database,        offsetof(Config, database)                  },
        { "jobs_dir",                  parse_absolute_path,   offsetof(Config, jobs_dir)                  },
        { "max_concurrent_executions", parse_unsigned,        offsetof(Config, max_concurrent_executions) },
        { "admin_group",               parse_nonempty_string, offsetof(Config, admin_group)               },
        { "keep_days",                 parse_unsigned,        offsetof(Config, keep_days)                 },
        { "keep_executions",           parse_unsigned,        offsetof(Config, keep_executions)           },
        { "stop_timeout",              parse_timeout,         offsetof(Config, stop_timeout_usec)         },
        { "kill_grace",                parse_duration,        offsetof(Config, kill_grace_usec)           },
        { "job_file_size_max",         parse_size,            offsetof(Config, job_file_size_max)         },
        { "context_size_max",          parse_size,            offsetof(Config, context_size_max)          },
        { "timestamps",                parse_timestamps,      offsetof(Config, timestamps_utc)            },
        { "context_format",            parse_context_format,  offsetof(Config, context_format)            },
        { "cluster",                   parse_bool,            offsetof(Config, cluster)                   },
        { "node_name",                 parse_node_name,       offsetof(Config, node_name)                 },
        { "node_timeout",              parse_node_timeout,    offsetof(Config, node_timeout_usec)         },
        { "metrics_textfile",          parse_absolute_path,   offsetof(Config, metrics_textfile)          },
};

/* A missing main file is not an error: the defaults apply. Sets *ret_jobs_dir_line to the line of
 * jobs_dir when the file sets it. */
static int main_file_load(LoadContext *ctx, Config *c, unsigned *ret_jobs_dir_line) {
        _cleanup_(config_t_destroyp) config_t cfg;
        _cleanup_fclose_ FILE *f = NULL;
        ParseState st = { .ctx = ctx, .file = c->path };
        const config_setting_t *s;
        int r;

        config_init(&cfg);
        *ret_jobs_dir_line = 0;

        r = config_file_open(ctx, AT_FDCWD, c->path, c->path, CONFIG_FILE_SIZE_MAX_DEFAULT, &f);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        c->main_file_found = true;

        r = config_file_read(ctx, f, c->path, &cfg);
        if (r < 0)
                return r;

        r = parse_table(&st, config_root_setting(&cfg), main_keys, ELEMENTSOF(main_keys), c);
        if (r < 0)
                return r;

        s = config_lookup(&cfg, "admin_group");
        if (s) {
                r = group_lookup(c->admin_group, &c->admin_gid);
                if (r == -ESRCH)
                        return parse_error(&st, s, "'admin_group': unknown group '%s'", c->admin_group);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return parse_error(&st, s, "'admin_group': cannot look up group '%s': %s",
                                           c->admin_group, strerror(-r));
        }

        s = config_lookup(&cfg, "jobs_dir");
        if (s)
                *ret_jobs_dir_line = setting_line(s);
        return 0;
}

/* ---- public ---- */

void config_load_options_init(ConfigLoadOptions *ret) {
        *ret = (ConfigLoadOptions) {
                .strict = false,
                .owner_uid = geteuid(),
                .daemon_uid = geteuid(),
        };
}

int config_new(const char *main_path, Config **ret) {
        _cleanup_(config_freep) Config *c = NULL;

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;

        *c = (Config) {
                .admin_gid = (gid_t) -1,
                .stop_timeout_usec = CONFIG_STOP_TIMEOUT_DEFAULT,
                .kill_grace_usec = CONFIG_KILL_GRACE_DEFAULT,
                .job_file_size_max = CONFIG_FILE_SIZE_MAX_DEFAULT,
                .context_size_max = CONFIG_CONTEXT_SIZE_MAX_DEFAULT,
                .context_format = CONTEXT_FORMAT_JSON,
                .node_timeout_usec = CONFIG_NODE_TIMEOUT_DEFAULT,
        };
        c->path = strdup(main_path ?: CONFIG_MAIN_PATH_DEFAULT);
        c->database = strdup(CONFIG_DATABASE_DEFAULT);
        c->jobs_dir = strdup(CONFIG_JOBS_DIR_DEFAULT);
        if (!c->path || !c->database || !c->jobs_dir)
                return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;

        free(c->path);
        free(c->database);
        free(c->jobs_dir);
        free(c->admin_group);
        free(c->node_name);
        free(c->metrics_textfile);
        strv_free(c->warnings);
        job_list_free(c->jobs, c->n_jobs);
        return mfree(c);
}

int config_load(const char *main_path, const ConfigLoadOptions *options, Config **ret, char ***ret_errors) {
        _cleanup_(config_freep) Config *c = NULL;
        ConfigLoadOptions defaults;
        LoadContext ctx = {};
        unsigned jobs_dir_line = 0;
        int r;

        if (!options) {
                config_load_options_init(&defaults);
                options = &defaults;
        }
        ctx.options = options;

        r = config_new(main_path, &c);
        if (r >= 0)
                r = main_file_load(&ctx, c, &jobs_dir_line);
        if (r >= 0)
                r = jobs_dir_load(&ctx, c, jobs_dir_line);
        if (ctx.oom)
                r = -ENOMEM;

        if (ret_errors)
                *ret_errors = TAKE_PTR(ctx.errors);
        else
                strv_free(ctx.errors);

        if (r < 0) {
                strv_free(ctx.warnings);
                return r;
        }
        c->warnings = TAKE_PTR(ctx.warnings);
        *ret = TAKE_PTR(c);
        return 0;
}

const JobConfig *config_find_job(const Config *c, const char *name) {
        if (!c || !name)
                return NULL;
        return job_list_find(c->jobs, c->n_jobs, name);
}

JobParameterType job_config_declared_type(const JobConfig *j, const char *name) {
        const JobParameter *p;

        assert(j);
        assert(name);

        /* Loading refuses a job whose declarations disagree, so the order does not matter. */
        if (j->schedule_parameter && streq(j->schedule_parameter, name))
                return j->schedule_parameter_type;
        if (j->incrementer == JOB_INCREMENTER_RUN_ID && streq(name, "run.id"))
                return JOB_PARAMETER_LONG;
        p = job_parameters_get(&j->parameters, name);
        if (p)
                return p->type;
        return _JOB_PARAMETER_TYPE_INVALID;
}

const StepConfig *job_config_find_step(const JobConfig *j, const char *name) {
        if (!j || !name)
                return NULL;
        for (size_t i = 0; i < j->n_steps; i++)
                if (streq(j->steps[i].name, name))
                        return j->steps + i;
        return NULL;
}
