/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "batchctl.h"
#include "calendar.h"
#include "log.h"
#include "output.h"
#include "verb-functions.h"

/* Declared in batchctl.c, which parses --base-time before any verb runs. */
int parse_base_time(const char *s, usec_t *ret);

#define ZONEINFO_DIR "/usr/share/zoneinfo/"

/* An IANA zone name with a TZif file behind it; no absolute paths or "..", which would let $TZ read any
 * file. */
static bool timezone_exists(const char *name) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        char magic[4];

        if (isempty(name) || name[0] == '/' || strstr(name, "..") || strlen(name) > 255)
                return false;
        for (const char *p = name; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("/_-+", *p))
                        return false;

        if (asprintf(&path, ZONEINFO_DIR "%s", name) < 0)
                return false;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ELOOP)   /* zoneinfo links zones to each other; a link is fine */
                fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        return read(fd, magic, sizeof(magic)) == (ssize_t) sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
}

/* mktime() in zone: batchctl is single-threaded, so switching $TZ for the call and back is safe here. */
static int mktime_in_zone(struct tm *tm, const char *zone, time_t *ret) {
        _cleanup_free_ char *saved = NULL;
        const char *old = getenv("TZ");
        time_t t = (time_t) -1;

        if (old) {
                saved = strdup(old);
                if (!saved)
                        return -ENOMEM;
        }
        if (setenv("TZ", zone, 1) < 0)
                return -errno;
        tzset();
        t = mktime(tm);
        if (saved)
                (void) setenv("TZ", saved, 1);
        else
                (void) unsetenv("TZ");
        tzset();

        if (t == (time_t) -1)
                return -EINVAL;
        *ret = t;
        return 0;
}

int parse_base_time(const char *s, usec_t *ret) {
        struct tm tm = { .tm_isdst = -1 };
        const char *zone = NULL;
        int n = 0, r;
        time_t t = (time_t) -1;

        if (isempty(s))
                return -EINVAL;

        if (streq(s, "now")) {
                *ret = now_usec(CLOCK_REALTIME);
                return 0;
        }

        /* "@1700000000" or "@1700000000.5": seconds since the epoch. */
        if (s[0] == '@') {
                unsigned long long sec;
                unsigned frac = 0;
                int digits = 0;
                char *end;

                if (!isdigit((unsigned char) s[1]))
                        return -EINVAL;
                errno = 0;
                sec = strtoull(s + 1, &end, 10);
                if (errno != 0 || sec > (USEC_INFINITY - 1) / USEC_PER_SEC - 1)
                        return -ERANGE;
                if (*end == '.') {
                        for (end++; isdigit((unsigned char) *end); end++)
                                if (digits < 6) {
                                        frac = frac * 10 + (unsigned) (*end - '0');
                                        digits++;
                                }
                        for (; digits < 6; digits++)
                                frac *= 10;
                }
                if (*end != '\0')
                        return -EINVAL;
                *ret = (usec_t) sec * USEC_PER_SEC + frac;
                return 0;
        }

        /* "YYYY-MM-DD[ HH:MM[:SS]][ ZONE]" */
        if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3)
                return -EINVAL;
        s += n;
        if (*s == ' ' && isdigit((unsigned char) s[1])) {
                n = 0;
                if (sscanf(s, " %2d:%2d%n", &tm.tm_hour, &tm.tm_min, &n) != 2 || n == 0)
                        return -EINVAL;
                s += n;
                if (*s == ':') {
                        n = 0;
                        if (sscanf(s, ":%2d%n", &tm.tm_sec, &n) != 1 || n == 0)
                                return -EINVAL;
                        s += n;
                }
        }
        if (*s == ' ') {
                zone = s + 1;
                if (isempty(zone))
                        return -EINVAL;
        } else if (*s != '\0')
                return -EINVAL;

        if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
            tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970)
                return -EINVAL;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;

        if (!zone)
                t = mktime(&tm);
        else if (strcasecmp(zone, "UTC") == 0 || strcasecmp(zone, "GMT") == 0 || streq(zone, "Z"))
                t = timegm(&tm);
        else {
                tzset();
                /* The local zone's own abbreviations, as systemd accepts them: "CET" or "CEST" in Berlin. */
                if (!isempty(tzname[0]) && streq(zone, tzname[0])) {
                        tm.tm_isdst = 0;
                        t = mktime(&tm);
                } else if (daylight && !isempty(tzname[1]) && streq(zone, tzname[1])) {
                        tm.tm_isdst = 1;
                        t = mktime(&tm);
                } else if (timezone_exists(zone)) {
                        r = mktime_in_zone(&tm, zone, &t);
                        if (r < 0)
                                return r;
                } else
                        return -EINVAL;
        }
        if (t == (time_t) -1 || t < 0)
                return -EINVAL;

        *ret = (usec_t) t * USEC_PER_SEC;
        return 0;
}

static int calendar_json(const char *expr, usec_t base) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *normalized = NULL, *why = NULL;
        _cleanup_free_ usec_t *next = NULL;
        json_object *a;
        int n = 0, r;

        r = calendar_spec_from_string(expr, &spec, &why);
        if (r < 0)
                return log_error_errno(r, "%s", why ?: "Invalid calendar expression.");
        r = calendar_spec_to_string(spec, &normalized);
        if (r < 0)
                return log_error_errno(r, "Failed to normalize '%s': %m", expr);

        if (arg_iterations > 0) {
                next = calloc(arg_iterations, sizeof(usec_t));
                if (!next)
                        return log_oom();
                n = calendar_spec_next_usec_many(spec, base, arg_iterations, next);
                if (n < 0)
                        return log_error_errno(n, "Failed to determine next elapse for '%s': %m", expr);
        }

        o = json_object_new_object();
        if (!o || json_add_string(o, "expression", expr) < 0 || json_add_string(o, "normalized", normalized) < 0)
                return log_oom();
        a = json_object_new_array();
        if (!a || json_object_object_add(o, "next_elapse_usec", a) < 0) {
                json_object_put(a);
                return log_oom();
        }
        for (int i = 0; i < n; i++)
                if (json_object_array_add(a, json_object_new_uint64(next[i])) < 0)
                        return log_oom();

        r = json_print_line(o, stdout);
        if (r < 0)
                return log_error_errno(r, "Failed to write output: %m");
        return 0;
}

int verb_calendar(int argc, char *argv[], void *userdata) {
        usec_t now = now_usec(CLOCK_REALTIME);
        /* One base for all expressions, as systemd-analyze does. */
        usec_t base = arg_base_time != USEC_INFINITY ? arg_base_time : now;
        int ret = 0, r;

        for (int i = 1; i < argc; i++) {
                _cleanup_free_ char *why = NULL;

                if (arg_json != JSON_OFF) {
                        r = calendar_json(argv[i], base);
                        if (r < 0 && ret == 0)
                                ret = r;
                        continue;
                }

                r = calendar_spec_print_analyze(stdout, argv[i], base, now, arg_iterations, &why);
                if (r < 0) {
                        fflush(stdout);
                        log_error_errno(r, "%s", why ?: "Failed to parse calendar specification.");
                        if (ret == 0)
                                ret = r;
                }
                /* systemd-analyze separates expressions by an empty line, failed ones included. */
                if (i + 1 < argc)
                        putchar('\n');
        }

        if (fflush(stdout) != 0)
                return log_error_errno(errno, "Failed to write output: %m");
        return ret;
}
