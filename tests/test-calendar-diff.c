/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Differential test of daemon/calendar.c against systemd-analyze calendar, the reference implementation.
 *
 * Random expressions (valid and invalid, from a seeded PRNG) are fed in batches to one systemd-analyze
 * process per batch, each batch with its own local time zone ($TZ) and base time (often near a DST change
 * of that zone, a month end or a leap day). The complete output of calendar_spec_print_analyze() must
 * equal what systemd-analyze prints, which covers acceptance, the normalized form and every elapse (to the
 * second, in local time and in UTC). "From now" lines depend on the real clock and are accepted if they
 * match either the clock before or after the run. Two batches are in flight at a time.
 *
 * systemd-analyze does not print microseconds, so a second phase pins down the exact µs of the first
 * elapse of some expressions: with base B and our first elapse N, the number of elapses systemd-analyze
 * lists within N's second must be the same for bases B and N-1µs and one less for base N. That proves
 * it has an elapse exactly at N and none in between.
 *
 * Environment: CALENDAR_DIFF_SEED (default below), CALENDAR_DIFF_COUNT (expressions, default 6000),
 * CALENDAR_DIFF_PROBES (µs probes, default 40), SYSTEMD_ANALYZE (path of the binary). Exit status 77
 * (skip) if systemd-analyze is not there. */

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/mman.h>  /* memfd_create() */
#include <sys/stat.h>
#include <sys/wait.h>

#include "calendar.h"
#include "tests.h"

#define DEFAULT_SEED UINT64_C(20221101)
#define DEFAULT_COUNT 6000
#define DEFAULT_PROBES 40
#define BATCH_MAX 60
#define EXIT_SKIP 77

extern char **environ;

static uint64_t rng_state;

static uint64_t rnd(void) {
        return test_random(&rng_state);
}

static unsigned rn(unsigned n) {
        return n == 0 ? 0 : (unsigned) (rnd() % n);
}

static bool chance(unsigned percent) {
        return rn(100) < percent;
}

#define PICK(array) (array[rn(ELEMENTSOF(array))])

/* Local zones the batches run in: with and without DST, half-hour DST (Lord_Howe), negative DST (Dublin),
 * DST at midnight (Santiago, Sao_Paulo in the past), a skipped day (Apia), odd offsets. */
static const char *const local_zones[] = {
        "UTC", "UTC", "Europe/Berlin", "Europe/Berlin", "America/New_York", "America/New_York", "America/Havana",
        "Australia/Lord_Howe", "Europe/Dublin", "America/Santiago", "America/Sao_Paulo", "Pacific/Apia",
        "America/St_Johns", "Asia/Kolkata", "Europe/London", "Asia/Tehran",
};

/* Zones written into expressions, including names that are not zones. */
static const char *const expr_zones[] = {
        "UTC", "utc", "Utc", "Europe/Berlin", "America/New_York", "Europe/London", "Australia/Lord_Howe",
        "Australia/Sydney", "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Chatham", "Europe/Dublin",
        "America/Santiago", "Pacific/Apia", "Africa/Casablanca", "Asia/Kathmandu", "Etc/GMT+5", "Etc/UTC",
        "EST5EDT", "CET", "GMT", "Zulu", "right/Europe/Berlin", "posix/America/New_York",
        "europe/berlin", "Mars/Olympus", "Europe", "Europe/", "Europe//Berlin", "/etc/localtime",
        "zone.tab", "Europe/Berlin.", "localtime", "leapseconds", "posixrules", "Factory", "GMT+0", "Etc/GMT-14",
};

static const char *const weekday_spellings[7][2] = {
        { "Monday", "Mon" }, { "Tuesday", "Tue" }, { "Wednesday", "Wed" }, { "Thursday", "Thu" },
        { "Friday", "Fri" }, { "Saturday", "Sat" }, { "Sunday", "Sun" },
};

static const char *const shorthands[] = {
        "minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually", "anually", "quarterly",
        "semiannually", "semi-annually", "biannually", "bi-annually", "Daily", "WEEKLY", "fortnightly",
        "today", "now", "tomorrow", "yesterday", "midnight",
};

typedef struct Buf {
        char *s;
        size_t n, size;
} Buf;

_printf_(2, 3)
static void buf_printf(Buf *b, const char *format, ...) {
        va_list ap;
        int k;

        for (;;) {
                va_start(ap, format);
                k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->size - b->n : 0, format, ap);
                va_end(ap);
                if (k < 0)
                        abort();
                if (b->s && b->n + (size_t) k < b->size) {
                        b->n += (size_t) k;
                        return;
                }
                b->size = MAX(b->size * 2, b->n + (size_t) k + 64);
                b->s = realloc(b->s, b->size);
                if (!b->s)
                        abort();
                b->s[b->n] = '\0';
        }
}

static void random_case(char *s) {
        int mode = (int) rn(10);

        for (; *s; s++)
                if (mode == 0)
                        *s = (char) toupper((unsigned char) *s);
                else if (mode == 1)
                        *s = (char) tolower((unsigned char) *s);
                else if (mode == 2 && chance(30))
                        *s = (char) (isupper((unsigned char) *s) ? tolower((unsigned char) *s) : toupper((unsigned char) *s));
}

static void gen_weekday(Buf *b, int d) {
        char name[16];

        snprintf(name, sizeof(name), "%s", weekday_spellings[d][rn(2)]);
        random_case(name);
        buf_printf(b, "%s", name);
}

static void gen_weekdays(Buf *b) {
        unsigned n = 1 + (chance(40) ? rn(3) : 0);

        for (unsigned i = 0; i < n; i++) {
                int d = (int) rn(7);

                if (i > 0)
                        buf_printf(b, ",");
                gen_weekday(b, d);
                if (chance(40)) {
                        int e = chance(90) ? d + (int) rn((unsigned) (7 - d)) : (int) rn(7);

                        buf_printf(b, "%s", chance(80) ? ".." : chance(80) ? "-" : ".");
                        gen_weekday(b, e);
                }
        }
        if (chance(5))
                buf_printf(b, ",");
        if (chance(2))
                buf_printf(b, "..");
        buf_printf(b, "%s", chance(90) ? " " : chance(50) ? "  " : "");
}

typedef enum { F_YEAR, F_MONTH, F_DAY, F_HOUR, F_MINUTE, F_SECOND } Field;

static int gen_int(Field f) {
        static const int lo[] = { 1970, 1, 1, 0, 0, 0 }, hi[] = { 2199, 12, 31, 23, 59, 59 };

        if (chance(4))
                return chance(50) ? lo[f] - 1 : hi[f] + 1;
        if (f == F_YEAR) {
                if (chance(20))
                        return (int) rn(100);
                if (chance(70))
                        return 2000 + (int) rn(45);
        }
        if (f == F_DAY && chance(40))
                return 25 + (int) rn(7);
        return lo[f] + (int) rn((unsigned) (hi[f] - lo[f] + 1));
}

static void gen_number(Buf *b, Field f, int v, bool allow_fraction) {
        if (f == F_YEAR && v < 100 && chance(50))
                buf_printf(b, "%02d", v);
        else if (chance(20) && v < 10 && f != F_YEAR)
                buf_printf(b, "%02d", v);
        else
                buf_printf(b, "%d", v);

        if (f == F_SECOND && allow_fraction && chance(25)) {
                static const char *const fractions[] = {
                        "5", "25", "75", "125", "000001", "999999", "9999995", "1234567", "0", "000000", "5000004",
                        "333333", "",
                };

                buf_printf(b, ".%s", PICK(fractions));
        }
}

/* "v", "v..w", "v/r" or "v..w/r", mostly but not always valid. */
static void gen_component(Buf *b, Field f) {
        static const int small[] = { 1, 2, 3, 4, 5, 7, 10, 15, 30 };
        int v = gen_int(f);
        unsigned kind = rn(10);

        gen_number(b, f, v, true);

        if (kind >= 5 && kind < 9) {
                int w = chance(85) ? v + (int) rn(f == F_YEAR ? 30 : f == F_SECOND ? 40 : 12) : gen_int(f);

                buf_printf(b, "..");
                gen_number(b, f, w, true);
        }
        if (kind >= 8 || (kind == 4 && chance(50))) {
                buf_printf(b, "/");
                if (chance(5))
                        gen_number(b, f, chance(50) ? 0 : gen_int(f), true);
                else
                        gen_number(b, f, PICK(small), true);
        }
}

static void gen_chain(Buf *b, Field f) {
        unsigned n;

        if (chance(f <= F_DAY ? 40 : 20)) {
                buf_printf(b, "*");
                return;
        }

        n = chance(70) ? 1 : 2 + rn(3);
        for (unsigned i = 0; i < n; i++) {
                if (i > 0)
                        buf_printf(b, ",");
                gen_component(b, f);
        }
        if (chance(1))
                buf_printf(b, ",");
}

static void mutate(Buf *b) {
        static const char alphabet[] = "*,.-~:/ 0123456789@MTSuUo";
        size_t pos;

        if (b->n == 0)
                return;
        pos = rn((unsigned) b->n);

        switch (rn(3)) {
        case 0: /* delete */
                memmove(b->s + pos, b->s + pos + 1, b->n - pos);
                b->n--;
                break;
        case 1: /* replace */
                b->s[pos] = alphabet[rn(sizeof(alphabet) - 1)];
                break;
        default: { /* insert */
                char c = alphabet[rn(sizeof(alphabet) - 1)];

                buf_printf(b, " ");
                memmove(b->s + pos + 1, b->s + pos, b->n - pos - 1);
                b->s[pos] = c;
                break;
        }
        }
}

/* A random expression, freshly allocated. Local abbreviations (tzname[]) come from the current $TZ. */
static char *gen_expression(void) {
        Buf b = {};
        unsigned kind = rn(100);

        buf_printf(&b, "%s", "");

        if (kind < 25) {
                /* Simple, valid schedules, which elapse often enough to hit DST changes near the base
                 * time; these are where the interplay with mktime() matters. */
                static const char *const templates[] = {
                        "hourly", "daily", "minutely", "*:0/15", "*:*:0/20", "*:30", "*-*-* 02:30", "*-*-* 01:30:00",
                        "*-*-* 03:00", "*-*-* 00:00", "*-*-* 23:59:59", "Sun *-*-* 01..03:*:00", "*-*-* 0..4:0/30",
                        "*-*-* 02:00:00", "*-*-* 01:59:59.5", "*-*~01 02:30", "Sun *-*~07 1:0", "*:*:0.5/10",
                        "*-*-* 2:*", "Sat,Sun 0/2:15", "*-*-* 00:30:00", "*-*-* 1,2,3:0,30",
                };
                static const char *const dst_zones[] = {
                        "Europe/Berlin", "America/New_York", "Europe/Dublin", "Australia/Lord_Howe",
                        "America/Santiago", "America/Havana", "Asia/Tehran", "Pacific/Apia", "UTC",
                };

                buf_printf(&b, "%s", PICK(templates));
                if (chance(30))
                        buf_printf(&b, " %s", PICK(dst_zones));
                return b.s;
        } else if (kind < 30) {
                char s[32];

                snprintf(s, sizeof(s), "%s", PICK(shorthands));
                if (chance(20))
                        random_case(s);
                buf_printf(&b, "%s", s);
        } else if (kind < 33) {
                if (chance(20))
                        gen_weekdays(&b);
                buf_printf(&b, "@%" PRIu64, chance(90) ? rnd() % UINT64_C(7300000000) : rnd() % UINT64_C(100000));
        } else {
                bool date, time;

                if (chance(30))
                        gen_weekdays(&b);

                date = chance(75);
                time = !date || chance(85);

                if (date) {
                        if (chance(60)) {
                                gen_chain(&b, F_YEAR);
                                buf_printf(&b, "-");
                        }
                        gen_chain(&b, F_MONTH);
                        buf_printf(&b, "%s", chance(15) ? "~" : "-");
                        gen_chain(&b, F_DAY);
                        if (time)
                                buf_printf(&b, "%s", chance(95) ? " " : "  ");
                }
                if (time) {
                        gen_chain(&b, F_HOUR);
                        buf_printf(&b, ":");
                        gen_chain(&b, F_MINUTE);
                        if (chance(75)) {
                                buf_printf(&b, ":");
                                gen_chain(&b, F_SECOND);
                        }
                }
        }

        if (chance(35)) {
                unsigned z = rn(10);

                if (z < 2 && !isempty(tzname[z]))
                        buf_printf(&b, " %s", tzname[z]);
                else
                        buf_printf(&b, " %s", PICK(expr_zones));
        }

        if (chance(8))
                mutate(&b);
        if (chance(1))
                buf_printf(&b, " ");

        return b.s;
}

/* Seconds since the epoch where the current local zone changes its UTC offset, in the given year, or 0. */
static time_t find_transition(int year) {
        struct tm tm = { .tm_year = year - 1900, .tm_mday = 1, .tm_hour = 12, .tm_isdst = -1 };
        time_t t = mktime(&tm), end = t + 366 * 86400, found[8];
        size_t n = 0;
        long prev_off = LONG_MIN;

        for (; t < end && n < ELEMENTSOF(found); t += 86400 / 4) {
                struct tm x;

                if (!localtime_r(&t, &x))
                        break;
                if (prev_off != LONG_MIN && x.tm_gmtoff != prev_off) {
                        /* Bisect to the second. */
                        time_t lo = t - 86400 / 4, hi = t;

                        while (hi - lo > 1) {
                                time_t mid = lo + (hi - lo) / 2;

                                localtime_r(&mid, &x);
                                if (x.tm_gmtoff == prev_off)
                                        lo = mid;
                                else
                                        hi = mid;
                        }
                        found[n++] = hi;
                        localtime_r(&t, &x);
                }
                prev_off = x.tm_gmtoff;
        }

        return n > 0 ? found[rn((unsigned) n)] : 0;
}

static usec_t gen_base(void) {
        unsigned kind = rn(100);
        time_t t = 0;

        if (kind < 35) {
                for (int tries = 0; tries < 5 && t == 0; tries++)
                        t = find_transition(1970 + (int) rn(131));
                if (t != 0) {
                        static const int offsets[] = { -1, 0, -3600, 3600, -1800, -86400, -7200 };

                        t += chance(50) ? PICK(offsets) : (time_t) rn(6 * 3600) - 3 * 3600;
                }
        } else if (kind < 60) {
                /* The last hours of a month, often February. */
                struct tm tm = {
                        .tm_year = 1990 + (int) rn(60) - 1900,
                        .tm_mon = chance(40) ? 2 : (int) rn(12) + 1,
                        .tm_mday = 1,
                        .tm_isdst = -1,
                };

                if (chance(30))
                        tm.tm_year = (2000 + 4 * (int) rn(20)) - 1900;  /* leap years */
                t = mktime(&tm) - (time_t) rn(2 * 86400);
        } else if (kind < 65) {
                struct tm tm = { .tm_year = 1990 + (int) rn(60) - 1900, .tm_mday = 1, .tm_isdst = -1 };

                t = mktime(&tm) - (time_t) rn(86400);
        } else if (kind < 67)
                t = (time_t) rn(3 * 86400);                     /* around the epoch */
        else if (kind < 69)
                t = (time_t) (7258118400LL - (time_t) rn(400 * 86400)); /* around the end of 2199 */
        else
                t = (time_t) (rnd() % UINT64_C(4102444800));      /* 1970..2100 */

        if (t <= 0)
                t = 1;

        return (usec_t) t * USEC_PER_SEC + (chance(40) ? rnd() % USEC_PER_SEC : 0);
}

/* One systemd-analyze run: started, then collected. */
typedef struct Oracle {
        pid_t pid;
        int out_fd, err_fd;
        char *out;
        char *err;
} Oracle;

static char *read_fd(int fd) {
        Buf b = {};

        buf_printf(&b, "%s", "");
        for (;;) {
                char chunk[65536];
                ssize_t k = read(fd, chunk, sizeof(chunk));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        perror("read");
                        abort();
                }
                if (k == 0)
                        break;
                buf_printf(&b, "%.*s", (int) k, chunk);
        }
        return b.s;
}

static const char *analyze_path;

/* Starts systemd-analyze calendar with $TZ set to tz. */
static void oracle_start(const char *tz, usec_t base, unsigned iterations, char **exprs, size_t n, Oracle *ret) {
        posix_spawn_file_actions_t fa;
        char *argv[n + 6], **envp;
        char it[32], bt[64], tzenv[128];
        size_t n_env = 0, k = 0;
        int out[2], errfd;

        snprintf(it, sizeof(it), "--iterations=%u", iterations);
        snprintf(bt, sizeof(bt), "--base-time=@%" PRIu64 ".%06" PRIu64, base / USEC_PER_SEC, base % USEC_PER_SEC);
        snprintf(tzenv, sizeof(tzenv), "TZ=%s", tz);

        argv[k++] = (char *) analyze_path;
        argv[k++] = (char *) "calendar";
        argv[k++] = it;
        argv[k++] = bt;
        argv[k++] = (char *) "--";
        for (size_t i = 0; i < n; i++)
                argv[k++] = exprs[i];
        argv[k] = NULL;

        for (char **e = environ; *e; e++)
                n_env++;
        envp = calloc(n_env + 8, sizeof(char *));
        if (!envp)
                abort();
        k = 0;
        for (char **e = environ; *e; e++)
                if (!strneq(*e, "TZ=", 3) && !strneq(*e, "LC_", 3) && !strneq(*e, "LANG=", 5) &&
                    !strneq(*e, "SYSTEMD_", 8))
                        envp[k++] = *e;
        envp[k++] = tzenv;
        envp[k++] = (char *) "LC_ALL=C";
        envp[k++] = (char *) "SYSTEMD_COLORS=0";
        envp[k++] = (char *) "SYSTEMD_PAGER=";
        envp[k++] = (char *) "SYSTEMD_LOG_LEVEL=err";
        envp[k] = NULL;

        if (pipe2(out, O_CLOEXEC) < 0)
                abort();
        errfd = memfd_create("oracle-stderr", MFD_CLOEXEC);
        if (errfd < 0)
                abort();

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, errfd, STDERR_FILENO);
        if (posix_spawn(&ret->pid, analyze_path, &fa, NULL, argv, envp) != 0) {
                perror("posix_spawn");
                abort();
        }
        posix_spawn_file_actions_destroy(&fa);
        free(envp);
        close(out[1]);
        ret->out_fd = out[0];
        ret->err_fd = errfd;
}

/* Collects its output. */
static void oracle_finish(Oracle *o) {
        int status;

        o->out = read_fd(o->out_fd);
        close(o->out_fd);
        while (waitpid(o->pid, &status, 0) < 0)
                if (errno != EINTR)
                        abort();
        if (lseek(o->err_fd, 0, SEEK_SET) < 0)
                abort();
        o->err = read_fd(o->err_fd);
        close(o->err_fd);
}

static void run_oracle(const char *tz, usec_t base, unsigned iterations, char **exprs, size_t n, Oracle *ret) {
        oracle_start(tz, base, iterations, exprs, n, ret);
        oracle_finish(ret);
}

/* Splits systemd-analyze's stdout into one block per expression; an empty block means it failed. */
static char **split_blocks(const char *out, size_t n) {
        char **blocks = calloc(n, sizeof(char *));
        const char *p = out;

        if (!blocks)
                abort();

        for (size_t i = 0; i < n; i++) {
                const char *end = p;

                /* A block is a run of non-empty lines; a single empty line separates expressions. */
                while (*end && *end != '\n') {
                        const char *nl = strchr(end, '\n');

                        end = nl ? nl + 1 : end + strlen(end);
                }
                blocks[i] = strndup(p, (size_t) (end - p));
                if (!blocks[i])
                        abort();
                p = end;
                if (i + 1 < n && *p == '\n')
                        p++;
        }
        return blocks;
}

/* Our output for an expression parsed before, or "" if that fails. */
static char *ours(const CalendarSpec *spec, const char *expr, usec_t base, usec_t now, unsigned iterations) {
        char *s = NULL, *err = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        f = open_memstream(&s, &size);
        if (!f)
                abort();
        r = calendar_spec_print_elapses(f, spec, expr, base, now, iterations, &err);
        fclose(f);
        free(err);
        if (r < 0)
                s[0] = '\0';
        return s;
}

/* Equal line by line, except that a "From now:" line may match the one computed with either clock reading
 * (a and b differ only in those lines). */
static bool outputs_match(const char *oracle, const char *a, const char *b) {
        for (;;) {
                size_t lo = strcspn(oracle, "\n"), la = strcspn(a, "\n"), lb = strcspn(b, "\n");
                bool relative = strneq(oracle + strspn(oracle, " "), "From now:", 9);

                if (!(lo == la && strneq(oracle, a, lo)) && !(relative && lo == lb && strneq(oracle, b, lo)))
                        return false;

                oracle += lo;
                a += la;
                b += lb;
                if (!*oracle || !*a || !*b)
                        return !*oracle && !*a && !*b;
                oracle++, a++, b++;
        }
}

static void print_block(const char *title, const char *s) {
        fprintf(stderr, "  --- %s ---\n%s", title, isempty(s) ? "  (rejected / failed)\n" : s);
}

/* The lines systemd-analyze logged about the expression. */
static void print_oracle_log(const char *err, const char *expr) {
        for (const char *p = err; p && *p;) {
                size_t l = strcspn(p, "\n");
                char *line = strndup(p, l);

                if (!line)
                        abort();
                if (strstr(line, expr))
                        fprintf(stderr, "  (systemd-analyze: %s)\n", line);
                free(line);
                p += l;
                if (*p)
                        p++;
        }
}

typedef struct Stats {
        unsigned compared, accepted, rejected, mismatches, probes, probe_mismatches, oracle_runs;
        usec_t oracle_usec;     /* time spent waiting for systemd-analyze's output */
} Stats;

/* Reloads the zone as a fresh process would see it. glibc updates tzname[] on every localtime()/mktime() to
 * the abbreviations in effect around the converted time, and the parser recognizes the local
 * abbreviations through tzname[] (as systemd does), so for the few zones whose abbreviations changed over
 * time, which suffix is recognized depends on what the process converted before. systemd-analyze parses
 * its expressions one after the other in a fresh process; reloading the zone and then handling the batch
 * in the same order, with the same calls, reproduces its state. */
static void reload_timezone(const char *tz) {
        if (setenv("TZ", "UTC", 1) < 0)
                abort();
        tzset();
        if (setenv("TZ", tz, 1) < 0)
                abort();
        tzset();
}

/* A copy of systemd's check whether a word names a time zone; see timezone_name_valid() in calendar.c. */
static bool zone_file_valid(const char *name) {
        char path[PATH_MAX], magic[4];
        struct stat st;
        bool slash = false;
        int fd;

        if (isempty(name) || name[0] == '/')
                return false;
        if (streq(name, "UTC"))
                return true;
        for (const char *s = name; *s; s++) {
                if (!isascii((unsigned char) *s) || (!isalnum((unsigned char) *s) && !strchr("-_+/", *s)))
                        return false;
                if (*s == '/' && slash)
                        return false;
                slash = *s == '/';
        }
        if (slash || snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name) >= (int) sizeof(path))
                return false;

        fd = open(path, O_RDONLY|O_CLOEXEC);
        if (fd < 0)
                return false;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || read(fd, magic, 4) != 4 || memcmp(magic, "TZif", 4) != 0) {
                close(fd);
                return false;
        }
        close(fd);
        return true;
}

/* After an expression fails to parse, systemd-analyze checks whether it would have been a valid timestamp
 * (to print a hint). That parse converts the current time with localtime_r(), which updates tzname[] (see
 * reload_timezone()), except for the forms it handles without: "@…", "+…", "-…", "now", "… ago",
 * "… left", "… UTC", and expressions ending in a zone name (parsed in a child process). Do the same. */
static void mimic_timestamp_hint(const char *expr) {
        const char *space = strrchr(expr, ' ');
        size_t l = strlen(expr);
        time_t t = time(NULL);
        struct tm tm;

        if ((expr[0] == '@' || expr[0] == '+' || expr[0] == '-') || streq(expr, "now"))
                return;
        if ((l >= 4 && streq(expr + l - 4, " ago")) || (l >= 5 && streq(expr + l - 5, " left")) ||
            (l >= 4 && strcasecmp(expr + l - 4, " UTC") == 0))
                return;
        if (space && zone_file_valid(space + 1))
                return;

        (void) localtime_r(&t, &tm);
}

/* Whether the only differing lines are "From now:" lines. */
static bool only_relative_differs(const char *oracle, const char *a) {
        for (;;) {
                size_t lo = strcspn(oracle, "\n"), la = strcspn(a, "\n");

                if (!(lo == la && strneq(oracle, a, lo)) && !strneq(oracle + strspn(oracle, " "), "From now:", 9))
                        return false;
                oracle += lo;
                a += la;
                if (!*oracle || !*a)
                        return !*oracle && !*a;
                oracle++, a++;
        }
}

typedef struct Batch {
        const char *tz;
        usec_t base;
        unsigned iterations;
        char *exprs[BATCH_MAX];
        size_t n;
        Oracle oracle;
        usec_t started;         /* CLOCK_REALTIME */
} Batch;

/* Generates a batch and starts systemd-analyze on it. */
static void batch_start(Batch *b, size_t n) {
        b->tz = PICK(local_zones);
        b->iterations = 1 + rn(8);
        b->n = n;

        /* Generating uses the batch's zone: for the local abbreviations, and for finding its DST changes. */
        if (setenv("TZ", b->tz, 1) < 0)
                abort();
        tzset();

        b->base = gen_base();
        for (size_t i = 0; i < n; i++)
                b->exprs[i] = gen_expression();

        b->started = now_usec(CLOCK_REALTIME);
        oracle_start(b->tz, b->base, b->iterations, b->exprs, b->n, &b->oracle);
}

static void compare_batch(Batch *batch, Stats *st) {
        const char *tz = batch->tz;
        usec_t base = batch->base;
        unsigned iterations = batch->iterations;
        char **exprs = batch->exprs;
        size_t n = batch->n;
        Oracle o = batch->oracle;
        usec_t now1 = batch->started, now2, wait_start = now_usec(CLOCK_MONOTONIC);
        char **blocks;

        oracle_finish(&o);
        now2 = now_usec(CLOCK_REALTIME);
        st->oracle_runs++;
        st->oracle_usec += now_usec(CLOCK_MONOTONIC) - wait_start;

        reload_timezone(tz);

        blocks = split_blocks(o.out, n);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
                _cleanup_free_ char *a = NULL, *err = NULL;
                bool ok;

                /* Parse exactly once, in the state systemd-analyze parsed it in (see reload_timezone()). */
                if (calendar_spec_from_string(exprs[i], &spec, &err) < 0)
                        a = strdup("");
                else
                        a = ours(spec, exprs[i], base, now1, iterations);
                if (!a)
                        abort();
                ok = streq(blocks[i], a);

                st->compared++;
                if (isempty(blocks[i]))
                        st->rejected++;
                else
                        st->accepted++;

                /* "From now" follows the real clock, which moved on while systemd-analyze ran. Only in
                 * this rare case compute ours again, with the later reading. */
                if (!ok && spec && only_relative_differs(blocks[i], a)) {
                        char *b = ours(spec, exprs[i], base, now2, iterations);

                        ok = outputs_match(blocks[i], a, b);
                        free(b);
                }

                if (!ok) {
                        st->mismatches++;
                        fprintf(stderr, "MISMATCH: expression '%s', TZ=%s, base @%" PRIu64 ".%06" PRIu64 ", %u iterations\n",
                                exprs[i], tz, base / USEC_PER_SEC, base % USEC_PER_SEC, iterations);
                        print_block("systemd-analyze", blocks[i]);
                        if (isempty(blocks[i]))
                                print_oracle_log(o.err, exprs[i]);
                        print_block("batchd", a);
                        if (err)
                                fprintf(stderr, "  (batchd: %s)\n", err);

                        /* The expressions before it matter (see reload_timezone()), so give all of them. */
                        fprintf(stderr, "  reproduce: TZ=%s systemd-analyze calendar --iterations=%u "
                                "--base-time=@%" PRIu64 ".%06" PRIu64 " --", tz, iterations,
                                base / USEC_PER_SEC, base % USEC_PER_SEC);
                        for (size_t j = 0; j <= i; j++)
                                fprintf(stderr, " '%s'", exprs[j]);
                        fputc('\n', stderr);
                }

                if (!spec)
                        mimic_timestamp_hint(exprs[i]);
                free(blocks[i]);
        }
        free(blocks);

        free(o.out);
        free(o.err);
        for (size_t i = 0; i < n; i++)
                free(exprs[i]);
}

/* Number of elapses systemd-analyze (in UTC) lists within second 'sec' for base b, or -1 if the list ends
 * inside that second (too few iterations to tell). */
static int oracle_count_in_second(const char *expr, usec_t b, unsigned iterations, time_t sec, Stats *st) {
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        char *exprs[] = { (char *) expr };
        bool beyond = false;
        Oracle o = {};
        int count = 0;

        run_oracle("UTC", b, iterations, exprs, 1, &o);
        st->oracle_runs++;
        st->oracle_usec += now_usec(CLOCK_MONOTONIC) - t0;

        for (const char *p = o.out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                const char *field = p + strspn(p, " "), *colon;
                struct tm tm = {};
                char wd[4];
                time_t t;

                if (!strneq(field, "Next elapse:", 12) && !strneq(field, "Iter. #", 7))
                        continue;
                colon = strchr(field, ':');
                if (!colon || sscanf(colon + 1, " %3s %d-%d-%d %d:%d:%d", wd, &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 7)
                        continue;
                tm.tm_year -= 1900;
                tm.tm_mon -= 1;
                t = timegm(&tm);
                if (t == sec)
                        count++;
                else if (t > sec)
                        beyond = true;
        }

        free(o.out);
        free(o.err);
        return beyond ? count : -1;
}

/* Phase two: the exact µs of the first elapse. Runs in UTC with expressions in UTC or an explicit zone
 * so that systemd-analyze prints UTC times. */
static void probe_usec(unsigned n_probes, Stats *st) {
        static const char *const secs[] = {
                "*", "0/0.25", "0.5/1.5", "1.000001/0.000003", "10..20/0.333333", "7.9999995", "0,0.5,59.999999",
                "0..59/7.25", "30.123456..59.5/2.5", "0/0.1", "00.000001", "59.999999", "0..30/1.000001",
        };
        static const char *const zones[] = { "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe" };

        for (unsigned i = 0; i < n_probes; i++) {
                _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
                char expr[256];
                usec_t base = gen_base(), list[64];
                time_t sec;
                int n, expect, c;

                if (chance(60))
                        snprintf(expr, sizeof(expr), "*-*-* *:%s:%s %s", chance(50) ? "*" : "0/5", PICK(secs), PICK(zones));
                else {
                        char *g = gen_expression();

                        snprintf(expr, sizeof(expr), "%s", g);
                        free(g);
                }

                if (calendar_spec_from_string(expr, &spec, NULL) < 0)
                        continue;

                n = calendar_spec_next_usec_many(spec, base, ELEMENTSOF(list), list);
                if (n <= 0)
                        continue;
                sec = (time_t) (list[0] / USEC_PER_SEC);

                expect = 0;
                while (expect < n && list[expect] / USEC_PER_SEC == (usec_t) sec)
                        expect++;
                if (expect == n)
                        continue; /* Cannot see past the second: no conclusion possible. */

                st->probes++;
                c = oracle_count_in_second(expr, base, (unsigned) expect + 1, sec, st);
                if (c == expect)
                        c = oracle_count_in_second(expr, list[0] - 1, (unsigned) expect + 1, sec, st);
                if (c == expect)
                        c = oracle_count_in_second(expr, list[0], (unsigned) expect + 1, sec, st) + 1;
                if (c != expect) {
                        st->probe_mismatches++;
                        fprintf(stderr, "MISMATCH (µs): expression '%s', TZ=UTC, base @%" PRIu64 ".%06" PRIu64
                                ": batchd's first elapse is @%" PRIu64 ".%06" PRIu64 ", systemd-analyze disagrees\n",
                                expr, base / USEC_PER_SEC, base % USEC_PER_SEC,
                                list[0] / USEC_PER_SEC, list[0] % USEC_PER_SEC);
                }
        }
}

static const char *find_analyze(void) {
        static char path[PATH_MAX];
        const char *e = getenv("SYSTEMD_ANALYZE"), *p;

        if (e)
                return access(e, X_OK) == 0 ? e : NULL;

        p = getenv("PATH") ?: "/usr/bin:/bin";
        while (*p) {
                size_t l = strcspn(p, ":");

                snprintf(path, sizeof(path), "%.*s/systemd-analyze", (int) l, p);
                if (l > 0 && access(path, X_OK) == 0)
                        return path;
                p += l;
                if (*p == ':')
                        p++;
        }
        return NULL;
}

static unsigned env_unsigned(const char *name, unsigned def) {
        const char *e = getenv(name);

        return e ? (unsigned) strtoul(e, NULL, 0) : def;
}

int main(void) {
        Stats st = {};
        uint64_t seed = DEFAULT_SEED;
        unsigned count, probes;
        usec_t start;
        const char *e;

        analyze_path = find_analyze();
        if (!analyze_path) {
                printf("SKIP: systemd-analyze not found\n");
                return EXIT_SKIP;
        }

        e = getenv("CALENDAR_DIFF_SEED");
        if (e)
                seed = strtoull(e, NULL, 0);
        count = env_unsigned("CALENDAR_DIFF_COUNT", DEFAULT_COUNT);
        probes = env_unsigned("CALENDAR_DIFF_PROBES", DEFAULT_PROBES);
        rng_state = seed;

        printf("seed %" PRIu64 " (CALENDAR_DIFF_SEED), %u expressions, %u µs probes, oracle %s\n",
               seed, count, probes, analyze_path);
        fflush(stdout);

        start = now_usec(CLOCK_MONOTONIC);

        /* Two batches in flight: systemd-analyze works on the next batch while this one is compared. */
        Batch batches[2] = {};
        size_t head = 0, in_flight = 0;
        unsigned queued = 0;

        for (;;) {
                while (queued < count && in_flight < ELEMENTSOF(batches)) {
                        size_t n = 20 + rn(BATCH_MAX - 20);

                        n = MIN(n, (size_t) (count - queued));
                        batch_start(batches + (head + in_flight) % ELEMENTSOF(batches), n);
                        queued += (unsigned) n;
                        in_flight++;
                }
                if (in_flight == 0)
                        break;

                compare_batch(batches + head, &st);
                head = (head + 1) % ELEMENTSOF(batches);
                in_flight--;
        }

        if (setenv("TZ", "UTC", 1) < 0)
                abort();
        tzset();
        probe_usec(probes, &st);

        printf("%u expressions compared (%u accepted, %u rejected by systemd-analyze), %u mismatches; "
               "%u µs probes, %u mismatches; %u systemd-analyze runs (%.1fs waiting for them); %.1fs in all\n",
               st.compared, st.accepted, st.rejected, st.mismatches, st.probes, st.probe_mismatches,
               st.oracle_runs, (double) st.oracle_usec / USEC_PER_SEC,
               (double) (now_usec(CLOCK_MONOTONIC) - start) / USEC_PER_SEC);

        return st.mismatches > 0 || st.probe_mismatches > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
