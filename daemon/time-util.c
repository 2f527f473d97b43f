/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>

#include "time-util.h"

usec_t now_usec(clockid_t clock) {
        struct timespec ts;

        /* Only fails for an invalid clock id, which is a programming error. */
        if (clock_gettime(clock, &ts) < 0)
                abort();
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

char *timestamp_format(usec_t t, char buf[static TIMESTAMP_MAX]) {
        return timestamp_format_zone(t, false, buf);
}

char *timestamp_format_zone(usec_t t, bool utc, char buf[static TIMESTAMP_MAX]) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (!(utc ? gmtime_r(&sec, &tm) : localtime_r(&sec, &tm)))
                return NULL;
        (void) snprintf(buf, TIMESTAMP_MAX, "%04d-%02d-%02d %02d:%02d:%02d.%06u",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned) (t % USEC_PER_SEC));
        return buf;
}

int timestamp_parse(const char *s, usec_t *ret) {
        return timestamp_parse_zone(s, false, ret);
}

int timestamp_parse_zone(const char *s, bool utc, usec_t *ret) {
        struct tm tm = { .tm_isdst = -1 };
        unsigned frac = 0;
        int n = 0, digits = 0;
        const char *p;
        time_t sec;

        if (!s || sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                         &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
                return -EINVAL;
        p = s + n;
        if (*p == '.') {
                for (p++; isdigit((unsigned char) *p); p++)
                        if (digits < 6) {
                                frac = frac * 10 + (unsigned) (*p - '0');
                                digits++;
                        }
                if (digits == 0)
                        return -EINVAL;
                for (; digits < 6; digits++)
                        frac *= 10;
        }
        if (*p != '\0')
                return -EINVAL;

        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        sec = utc ? timegm(&tm) : mktime(&tm);
        if (sec == (time_t) -1 || sec < 0)
                return -EINVAL;
        *ret = (usec_t) sec * USEC_PER_SEC + frac;
        return 0;
}

/* systemd.time(7) units. Longest suffixes first so "min" is not read as "m" + "in", and "ms" before "m". */
static const struct {
        const char *suffix;
        usec_t usec;
} timespan_units[] = {
        { "seconds", USEC_PER_SEC },
        { "second",  USEC_PER_SEC },
        { "sec",     USEC_PER_SEC },
        { "s",       USEC_PER_SEC },
        { "minutes", 60 * USEC_PER_SEC },
        { "minute",  60 * USEC_PER_SEC },
        { "min",     60 * USEC_PER_SEC },
        { "months",  2629800 * USEC_PER_SEC },
        { "month",   2629800 * USEC_PER_SEC },
        { "M",       2629800 * USEC_PER_SEC },
        { "msec",    USEC_PER_MSEC },
        { "ms",      USEC_PER_MSEC },
        { "m",       60 * USEC_PER_SEC },
        { "hours",   3600 * USEC_PER_SEC },
        { "hour",    3600 * USEC_PER_SEC },
        { "hr",      3600 * USEC_PER_SEC },
        { "h",       3600 * USEC_PER_SEC },
        { "days",    86400 * USEC_PER_SEC },
        { "day",     86400 * USEC_PER_SEC },
        { "d",       86400 * USEC_PER_SEC },
        { "weeks",   604800 * USEC_PER_SEC },
        { "week",    604800 * USEC_PER_SEC },
        { "w",       604800 * USEC_PER_SEC },
        { "years",   31557600 * USEC_PER_SEC },
        { "year",    31557600 * USEC_PER_SEC },
        { "y",       31557600 * USEC_PER_SEC },
        { "usec",    1 },
        { "us",      1 },
        { "μs",      1 },              /* U+03BC GREEK SMALL LETTER MU, what systemd prints */
        { "µs",      1 },              /* U+00B5 MICRO SIGN */
};

/* systemd's WHITESPACE: no \v or \f, unlike isspace(). */
#define TIMESPAN_WHITESPACE " \t\n\r"

/* The unit at p, if any: returns what follows it and sets *unit; returns p itself when there is none. */
static const char *timespan_unit(const char *p, usec_t *unit) {
        for (size_t i = 0; i < ELEMENTSOF(timespan_units); i++) {
                size_t l = strlen(timespan_units[i].suffix);

                if (strncmp(p, timespan_units[i].suffix, l) == 0) {
                        *unit = timespan_units[i].usec;
                        return p + l;
                }
        }
        return p;
}

static int timespan_add(usec_t *total, usec_t v) {
        if (v >= USEC_INFINITY - *total)
                return -ERANGE;
        *total += v;
        return 0;
}

/* Exactly what systemd 252's parse_sec() accepts, with the same result, so that a duration means in a job file
 * what it means in a unit file: tests/test-time-util.c has systemd's own cases and tests/test-timespan-diff.c
 * compares random input with systemd-analyze timespan. Each term is an integer (strtoll(): an optional "+", no
 * "-"), optionally a "." and at least one digit, optional whitespace and an optional unit; the fraction is
 * truncated to whole microseconds, digit by digit. */
int timespan_parse(const char *s, usec_t *ret) {
        const char *p;
        usec_t total = 0;
        bool any = false;
        int r;

        if (!s)
                return -EINVAL;

        p = s + strspn(s, TIMESPAN_WHITESPACE);
        if (strncmp(p, "infinity", strlen("infinity")) == 0) {
                p += strlen("infinity");
                if (p[strspn(p, TIMESPAN_WHITESPACE)] != '\0')
                        return -EINVAL;
                *ret = USEC_INFINITY;
                return 0;
        }

        for (;;) {
                const char *after_number, *after_unit, *fraction = NULL;
                usec_t unit = USEC_PER_SEC;
                long long whole;
                char *end;

                p += strspn(p, TIMESPAN_WHITESPACE);
                if (*p == '\0')
                        break;
                if (*p == '-')
                        return -ERANGE;

                errno = 0;
                whole = strtoll(p, &end, 10);
                if (errno != 0)
                        return -errno;
                if (whole < 0)
                        return -ERANGE;

                if (*end == '.') {
                        /* ".5" is a number too: strtoll() read nothing, the fraction is all there is. */
                        fraction = end + 1;
                        after_number = fraction + strspn(fraction, "0123456789");
                } else if (end == p)
                        return -EINVAL;
                else
                        after_number = end;

                after_unit = timespan_unit(after_number + strspn(after_number, TIMESPAN_WHITESPACE), &unit);
                /* A number must end in a unit, whitespace or the end: "1.2.3" is not "1.2" + ".3". */
                if (after_unit == after_number && *after_unit != '\0')
                        return -EINVAL;
                p = after_unit;

                if ((usec_t) whole >= USEC_INFINITY / unit)
                        return -ERANGE;
                r = timespan_add(&total, (usec_t) whole * unit);
                if (r < 0)
                        return r;
                any = true;

                if (fraction) {
                        const char *d = fraction;

                        for (usec_t scale = unit / 10; *d >= '0' && *d <= '9'; d++, scale /= 10) {
                                r = timespan_add(&total, (usec_t) (*d - '0') * scale);
                                if (r < 0)
                                        return r;
                        }
                        /* "3.", "3. 1s" and "3.s": a point needs a digit after it. */
                        if (d == fraction)
                                return -EINVAL;
                }
        }

        if (!any)
                return -EINVAL;
        *ret = total;
        return 0;
}

char *timespan_format(usec_t t, char buf[static TIMESPAN_MAX]) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } table[] = {
                { "y",   31557600 * USEC_PER_SEC },
                { "month", 2629800 * USEC_PER_SEC },
                { "w",   604800 * USEC_PER_SEC },
                { "d",   86400 * USEC_PER_SEC },
                { "h",   3600 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC },
                { "s",   USEC_PER_SEC },
                { "ms",  USEC_PER_MSEC },
                { "us",  1 },
        };
        size_t n = 0;

        if (t == USEC_INFINITY) {
                snprintf(buf, TIMESPAN_MAX, "infinity");
                return buf;
        }
        if (t == 0) {
                snprintf(buf, TIMESPAN_MAX, "0");
                return buf;
        }

        buf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(table) && t > 0; i++) {
                usec_t k = t / table[i].usec;

                if (k == 0)
                        continue;
                n += (size_t) snprintf(buf + n, TIMESPAN_MAX - n, "%s%llu%s", n > 0 ? " " : "",
                                       (unsigned long long) k, table[i].suffix);
                if (n >= TIMESPAN_MAX)
                        break;
                t -= k * table[i].usec;
        }
        return buf;
}

/* systemd's format_timestamp_relative(): two units at most, coarser the further away ("3h 5min left"). */
char *timestamp_format_relative(usec_t t, usec_t now, char buf[static TIMESTAMP_RELATIVE_MAX]) {
        const usec_t minute = 60 * USEC_PER_SEC, hour = 60 * minute, day = 24 * hour, week = 7 * day;
        const usec_t month = 2629800 * USEC_PER_SEC, year = 31557600 * USEC_PER_SEC;
        const char *s;
        usec_t d;

        if (now > t) {
                d = now - t;
                s = " ago";
        } else {
                d = t - now;
                s = " left";
        }

#define PLURAL(n, one, many) (unsigned long long) (n), (n) == 1 ? one : many
        if (d >= year)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%llu %s %llu %s%s",
                         PLURAL(d / year, "year", "years"), PLURAL(d % year / month, "month", "months"), s);
        else if (d >= month)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%llu %s %llu %s%s",
                         PLURAL(d / month, "month", "months"), PLURAL(d % month / day, "day", "days"), s);
        else if (d >= week)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%llu %s %llu %s%s",
                         PLURAL(d / week, "week", "weeks"), PLURAL(d % week / day, "day", "days"), s);
        else if (d >= 2 * day)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%llu days%s", (unsigned long long) (d / day), s);
        else if (d >= 25 * hour)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "1 day %lluh%s", (unsigned long long) ((d - day) / hour), s);
        else if (d >= 6 * hour)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%lluh%s", (unsigned long long) (d / hour), s);
        else if (d >= hour)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%lluh %llumin%s",
                         (unsigned long long) (d / hour), (unsigned long long) (d % hour / minute), s);
        else if (d >= 5 * minute)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%llumin%s", (unsigned long long) (d / minute), s);
        else if (d >= minute)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%llumin %llus%s",
                         (unsigned long long) (d / minute), (unsigned long long) (d % minute / USEC_PER_SEC), s);
        else if (d >= USEC_PER_SEC)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%llus%s", (unsigned long long) (d / USEC_PER_SEC), s);
        else if (d >= USEC_PER_MSEC)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%llums%s", (unsigned long long) (d / USEC_PER_MSEC), s);
        else if (d > 0)
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "%lluus%s", (unsigned long long) d, s);
        else
                snprintf(buf, TIMESTAMP_RELATIVE_MAX, "now");
#undef PLURAL
        return buf;
}
