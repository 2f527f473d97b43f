/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "calendar.h"

/* The expected values come from systemd-analyze calendar of systemd 252 (see docs/calendar.md); the
 * differential test tests/test-calendar-diff.c compares against it directly. */

typedef struct Case {
        const char *tz;         /* the local time zone while the case runs */
        const char *base;       /* UTC, "YYYY-MM-DD HH:MM:SS[.ffffff]" */
        unsigned n;             /* elapses asked for */
        const char *expr;
        const char *normalized;
        const char *next[8];    /* UTC; fewer than n means the event stops elapsing */
} Case;

static const Case cases[] = {
        /* Weekdays, lists, ranges. */
        { "UTC", "2023-11-17 12:00:00", 3, "Mon..Fri 10:00",
          "Mon..Fri *-*-* 10:00:00", { "2023-11-20 10:00:00", "2023-11-21 10:00:00", "2023-11-22 10:00:00" } },
        { "UTC", "2023-11-14 00:00:00", 3, "Sat,Sun 2024..2030-*-1,15 8:00",
          "Sat,Sun 2024..2030-*-01,15 08:00:00", { "2024-06-01 08:00:00", "2024-06-15 08:00:00", "2024-09-01 08:00:00" } },
        /* Shorthands. */
        { "UTC", "2024-01-01 00:00:30", 2, "minutely",
          "*-*-* *:*:00", { "2024-01-01 00:01:00", "2024-01-01 00:02:00" } },
        { "UTC", "2024-01-01 00:00:30", 2, "hourly",
          "*-*-* *:00:00", { "2024-01-01 01:00:00", "2024-01-01 02:00:00" } },
        { "UTC", "2024-02-28 12:00:00", 3, "daily",
          "*-*-* 00:00:00", { "2024-02-29 00:00:00", "2024-03-01 00:00:00", "2024-03-02 00:00:00" } },
        { "UTC", "2024-02-28 12:00:00", 2, "weekly",
          "Mon *-*-* 00:00:00", { "2024-03-04 00:00:00", "2024-03-11 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 3, "monthly",
          "*-*-01 00:00:00", { "2024-02-01 00:00:00", "2024-03-01 00:00:00", "2024-04-01 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 2, "yearly",
          "*-01-01 00:00:00", { "2025-01-01 00:00:00", "2026-01-01 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 1, "annually",
          "*-01-01 00:00:00", { "2025-01-01 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 1, "anually",
          "*-01-01 00:00:00", { "2025-01-01 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 4, "quarterly",
          "*-01,04,07,10-01 00:00:00", { "2024-04-01 00:00:00", "2024-07-01 00:00:00", "2024-10-01 00:00:00", "2025-01-01 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 2, "semiannually",
          "*-01,07-01 00:00:00", { "2024-07-01 00:00:00", "2025-01-01 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 1, "semi-annually",
          "*-01,07-01 00:00:00", { "2024-07-01 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 1, "biannually",
          "*-01,07-01 00:00:00", { "2024-07-01 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 1, "bi-annually",
          "*-01,07-01 00:00:00", { "2024-07-01 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 1, "DAILY",
          "*-*-* 00:00:00", { "2024-02-01 00:00:00" } },
        /* Leap days and month ends. */
        { "UTC", "2023-03-01 00:00:00", 3, "*-02-29",
          "*-02-29 00:00:00", { "2024-02-29 00:00:00", "2028-02-29 00:00:00", "2032-02-29 00:00:00" } },
        { "UTC", "2024-01-31 12:00:00", 3, "*-*-31",
          "*-*-31 00:00:00", { "2024-03-31 00:00:00", "2024-05-31 00:00:00", "2024-07-31 00:00:00" } },
        { "UTC", "2024-04-29 00:00:00", 4, "*-*-30,31",
          "*-*-30,31 00:00:00", { "2024-04-30 00:00:00", "2024-05-30 00:00:00", "2024-05-31 00:00:00", "2024-06-30 00:00:00" } },
        /* Days counted from the end of the month. */
        { "UTC", "2023-01-01 00:00:00", 3, "*-02~01",
          "*-02~01 00:00:00", { "2023-02-28 00:00:00", "2024-02-29 00:00:00", "2025-02-28 00:00:00" } },
        { "UTC", "2023-11-14 00:00:00", 2, "*-02~03",
          "*-02~03 00:00:00", { "2024-02-27 00:00:00", "2025-02-26 00:00:00" } },
        { "UTC", "2024-01-01 00:00:00", 3, "Mon *-05~07/1",
          "Mon *-05~07/1 00:00:00", { "2024-05-27 00:00:00", "2025-05-26 00:00:00", "2026-05-25 00:00:00" } },
        { "UTC", "2024-01-01 00:00:00", 3, "Fri *-*~07",
          "Fri *-*~07 00:00:00", { "2024-02-23 00:00:00", "2024-10-25 00:00:00", "2025-07-25 00:00:00" } },
        { "UTC", "2024-02-01 00:00:00", 4, "*-*~01..03",
          "*-*~01..03 00:00:00", { "2024-02-27 00:00:00", "2024-02-28 00:00:00", "2024-02-29 00:00:00", "2024-03-29 00:00:00" } },
        { "UTC", "2024-02-01 00:00:00", 3, "*~5/2",
          "*-*~05/2 00:00:00", { "2024-02-25 00:00:00", "2024-02-27 00:00:00", "2024-02-29 00:00:00" } },
        /* Repetitions. */
        { "UTC", "2024-01-01 00:07:00", 3, "*:0/15",
          "*-*-* *:00/15:00", { "2024-01-01 00:15:00", "2024-01-01 00:30:00", "2024-01-01 00:45:00" } },
        { "UTC", "2024-01-01 00:00:00", 4, "*-*-* 1..5/2:00",
          "*-*-* 01..05/2:00:00", { "2024-01-01 01:00:00", "2024-01-01 03:00:00", "2024-01-01 05:00:00", "2024-01-02 01:00:00" } },
        { "UTC", "2023-06-01 00:00:00", 4, "2024..2030/3-01-01",
          "2024..2030/3-01-01 00:00:00", { "2024-01-01 00:00:00", "2027-01-01 00:00:00", "2030-01-01 00:00:00" } },
        /* UTC, epoch times, two-digit years, events in the past. */
        { "UTC", "2023-06-01 00:00:00", 1, "12:00 UTC",
          "*-*-* 12:00:00 UTC", { "2023-06-01 12:00:00" } },
        { "UTC", "2023-06-01 00:00:00", 1, "*-*-* 12:00:00 utc",
          "*-*-* 12:00:00 UTC", { "2023-06-01 12:00:00" } },
        { "UTC", "2023-01-01 00:00:00", 2, "@1700000000",
          "2023-11-14 22:13:20 UTC", { "2023-11-14 22:13:20" } },
        { "UTC", "2023-01-01 00:00:00", 2, "23-12-25",
          "2023-12-25 00:00:00", { "2023-12-25 00:00:00" } },
        { "UTC", "2023-01-01 00:00:00", 1, "99-12-25",
          "1999-12-25 00:00:00", {  } },
        { "UTC", "2023-01-01 00:00:00", 1, "2000-01-01",
          "2000-01-01 00:00:00", {  } },
        { "UTC", "2023-01-01 00:00:00", 1, "*-02-30",
          "*-02-30 00:00:00", {  } },
        /* Normalization. */
        { "UTC", "2023-01-01 00:00:00", 2, "*-*-* *:*:*",
          "*-*-* *:*:*", { "2023-01-01 00:00:01", "2023-01-01 00:00:02" } },
        { "UTC", "2023-01-01 00:00:00", 3, "Sat,Sun,Mon *-*-* 00:00",
          "Mon,Sat,Sun *-*-* 00:00:00", { "2023-01-02 00:00:00", "2023-01-07 00:00:00", "2023-01-08 00:00:00" } },
        { "UTC", "2023-01-01 00:00:00", 2, "Mon,Tue",
          "Mon,Tue *-*-* 00:00:00", { "2023-01-02 00:00:00", "2023-01-03 00:00:00" } },
        { "UTC", "2023-01-01 00:00:00", 3, "Mon-Wed 12:00",
          "Mon..Wed *-*-* 12:00:00", { "2023-01-02 12:00:00", "2023-01-03 12:00:00", "2023-01-04 12:00:00" } },
        { "UTC", "2023-01-01 00:00:00", 1, "monday..sunday",
          "*-*-* 00:00:00", { "2023-01-02 00:00:00" } },
        { "UTC", "2023-01-01 00:00:00", 3, "Wednesday,Fri..Sun,Mon",
          "Mon,Wed,Fri..Sun *-*-* 00:00:00", { "2023-01-02 00:00:00", "2023-01-04 00:00:00", "2023-01-06 00:00:00" } },
        { "UTC", "2023-01-01 00:00:00", 2, "*-*-* 10,9,10:00",
          "*-*-* 09,10:00:00", { "2023-01-01 09:00:00", "2023-01-01 10:00:00" } },
        { "UTC", "2023-01-01 00:00:00", 3, "*-*-* 1..10/4:00",
          "*-*-* 01..09/4:00:00", { "2023-01-01 01:00:00", "2023-01-01 05:00:00", "2023-01-01 09:00:00" } },
        { "UTC", "2023-01-01 00:00:00", 1, "*-*-* 10..12/5:00",
          "*-*-* 10:00:00", { "2023-01-01 10:00:00" } },
        { "UTC", "2023-01-01 00:00:00", 1, "*:*:5,0/1",
          "*-*-* *:*:*", { "2023-01-01 00:00:01" } },
        { "UTC", "2023-01-01 00:00:00", 1, "*:*:0..30",
          "*-*-* *:*:00..30", { "2023-01-01 00:00:01" } },
        { "UTC", "2023-01-01 00:00:00", 1, "*:*:1.9999995",
          "*-*-* *:*:02", { "2023-01-01 00:00:02" } },
        { "UTC", "2023-01-01 00:00:00", 1, "*:*:0.5/1.5",
          "*-*-* *:*:00.500000/1.500000", { "2023-01-01 00:00:00.500000" } },
        { "UTC", "2023-01-01 00:00:00", 1, "2023-01-01 00:00:00",
          "2023-01-01 00:00:00", {  } },
        /* The last supported year. */
        { "UTC", "2199-12-30 00:00:00", 3, "daily",
          "*-*-* 00:00:00", { "2199-12-31 00:00:00" } },
        /* DST in the local zone (Europe/Berlin: last Sundays of March and October). A wall time that
         * does not exist is skipped; "daily CEST" never elapses: systemd forces tm_isdst=1 and mktime()
         * then never agrees with itself. */
        { "Europe/Berlin", "2024-03-30 12:00:00", 3, "*-*-* 02:30:00",
          "*-*-* 02:30:00", { "2024-04-01 00:30:00", "2024-04-02 00:30:00", "2024-04-03 00:30:00" } },
        { "Europe/Berlin", "2024-03-31 00:30:00", 3, "hourly",
          "*-*-* *:00:00", { "2024-03-31 01:00:00", "2024-03-31 02:00:00", "2024-03-31 03:00:00" } },
        { "Europe/Berlin", "2024-03-31 00:30:00", 3, "*:30",
          "*-*-* *:30:00", { "2024-03-31 01:30:00", "2024-03-31 02:30:00", "2024-03-31 03:30:00" } },
        { "Europe/Berlin", "2024-10-26 12:00:00", 3, "*-*-* 02:30:00",
          "*-*-* 02:30:00", { "2024-10-27 00:30:00", "2024-10-28 01:30:00", "2024-10-29 01:30:00" } },
        { "Europe/Berlin", "2024-10-26 23:30:00", 4, "hourly",
          "*-*-* *:00:00", { "2024-10-27 00:00:00", "2024-10-27 02:00:00", "2024-10-27 03:00:00", "2024-10-27 04:00:00" } },
        { "Europe/Berlin", "2024-11-14 00:00:00", 2, "daily CET",
          "*-*-* 00:00:00 CET", { "2024-11-14 23:00:00", "2024-11-15 23:00:00" } },
        { "Europe/Berlin", "2024-11-14 00:00:00", 1, "daily CEST",
          "*-*-* 00:00:00 CEST", {  } },
        { "Europe/Berlin", "2024-03-25 00:00:00", 2, "Sun *-03~07 02:00:00",
          "Sun *-03~07 02:00:00", {  } },
        /* Explicit zones, evaluated in a child process. */
        { "UTC", "2024-03-30 00:00:00", 3, "*-*-* 02:30 Europe/Berlin",
          "*-*-* 02:30:00 Europe/Berlin", { "2024-03-30 01:30:00", "2024-04-01 00:30:00", "2024-04-02 00:30:00" } },
        { "UTC", "2024-10-26 00:00:00", 3, "*-*-* 02:30 Europe/Berlin",
          "*-*-* 02:30:00 Europe/Berlin", { "2024-10-26 00:30:00", "2024-10-27 00:30:00", "2024-10-28 01:30:00" } },
        { "UTC", "2024-03-09 00:00:00", 3, "*-*-* 02:30 America/New_York",
          "*-*-* 02:30:00 America/New_York", { "2024-03-09 07:30:00", "2024-03-11 06:30:00", "2024-03-12 06:30:00" } },
        { "UTC", "2024-11-02 00:00:00", 3, "daily America/New_York",
          "*-*-* 00:00:00 America/New_York", { "2024-11-02 04:00:00", "2024-11-03 04:00:00", "2024-11-04 05:00:00" } },
        /* DST in America/New_York (second Sunday of March, first Sunday of November). */
        { "America/New_York", "2024-11-02 12:00:00", 3, "*-*-* 01:30",
          "*-*-* 01:30:00", { "2024-11-03 05:30:00", "2024-11-04 06:30:00", "2024-11-05 06:30:00" } },
        { "America/New_York", "2024-03-09 12:00:00", 3, "*-*-* 02:30",
          "*-*-* 02:30:00", { "2024-03-11 06:30:00", "2024-03-12 06:30:00", "2024-03-13 06:30:00" } },
        { "America/New_York", "2024-11-02 12:00:00", 3, "daily EST",
          "*-*-* 00:00:00 EST", {  } },
        { "America/New_York", "2024-11-02 12:00:00", 2, "daily EDT",
          "*-*-* 00:00:00 EDT", { "2024-11-03 04:00:00" } },
        /* Negative DST in POSIX-rule years (after 2037), half-hour DST, a skipped day. */
        { "Europe/Dublin", "2039-03-26 23:59:59", 3, "daily",
          "*-*-* 00:00:00", { "2039-03-27 00:00:00", "2039-03-27 23:00:00", "2039-03-28 23:00:00" } },
        { "Australia/Lord_Howe", "2024-04-06 14:00:00", 4, "*:15",
          "*-*-* *:15:00", { "2024-04-06 14:15:00", "2024-04-06 15:45:00", "2024-04-06 16:45:00", "2024-04-06 17:45:00" } },
        { "UTC", "2024-02-28 23:00:00", 1, "*-*-* *:*:00 Pacific/Apia",
          "*-*-* *:*:00 Pacific/Apia", { "2024-02-28 23:01:00" } },

        /* Fractional seconds: systemd-analyze prints whole seconds only, these are checked to the µs by
         * the differential test's probes. */
        { "UTC", "2024-01-01 00:00:00.100000", 5, "*:*:0/0.25",
          "*-*-* *:*:00/0.250000", { "2024-01-01 00:00:00.250000", "2024-01-01 00:00:00.500000",
                                     "2024-01-01 00:00:00.750000", "2024-01-01 00:00:01", "2024-01-01 00:00:01.250000" } },
        { "UTC", "2024-01-01 00:00:59.999999", 2, "*:*:59.999999",
          "*-*-* *:*:59.999999", { "2024-01-01 00:01:59.999999", "2024-01-01 00:02:59.999999" } },
        { "UTC", "2024-01-01 00:00:00", 3, "*:*:1.5..3.5",
          "*-*-* *:*:01.500000..03.500000", { "2024-01-01 00:00:01.500000", "2024-01-01 00:00:02.500000",
                                              "2024-01-01 00:00:03.500000" } },
        { "UTC", "2024-01-01 00:00:00.5", 1, "*:*:00",
          "*-*-* *:*:00", { "2024-01-01 00:01:00" } },
        { "UTC", "2024-01-01 00:00:00", 2, "*:*:0.0000005/0.0000015",
          "*-*-* *:*:00.000001/0.000002", { "2024-01-01 00:00:00.000001", "2024-01-01 00:00:00.000003" } },
};

static void set_tz(const char *tz) {
        assert_int_equal(setenv("TZ", tz, 1), 0);
        tzset();
}

static usec_t parse_utc(const char *s) {
        struct tm tm = {};
        unsigned frac = 0;
        int n = 0, digits = 0;

        assert_int_equal(sscanf(s, "%d-%d-%d %d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                                &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n), 6);
        if (s[n] == '.')
                for (const char *p = s + n + 1; *p; p++, digits++)
                        frac = frac * 10 + (unsigned) (*p - '0');
        for (; digits < 6; digits++)
                frac *= 10;
        tm.tm_year -= 1900;
        tm.tm_mon--;
        return (usec_t) timegm(&tm) * USEC_PER_SEC + frac;
}

static const char *format_utc(usec_t t, char buf[static 64]) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        int n;

        assert_non_null(gmtime_r(&sec, &tm));
        n = snprintf(buf, 64, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (t % USEC_PER_SEC != 0)
                snprintf(buf + n, 64 - (size_t) n, ".%06u", (unsigned) (t % USEC_PER_SEC));
        return buf;
}

static void check_case(const Case *c) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        _cleanup_free_ char *normalized = NULL, *err = NULL;
        usec_t next[ELEMENTSOF(c->next)];
        size_t expected = 0;
        int n;

        while (expected < ELEMENTSOF(c->next) && c->next[expected])
                expected++;

        set_tz(c->tz);
        if (calendar_spec_from_string(c->expr, &spec, &err) < 0)
                fail_msg("'%s' (TZ=%s) rejected: %s", c->expr, c->tz, strna(err));
        assert_int_equal(calendar_spec_to_string(spec, &normalized), 0);
        if (!streq(normalized, c->normalized))
                fail_msg("'%s' (TZ=%s) normalized to '%s', expected '%s'", c->expr, c->tz, normalized, c->normalized);

        assert_true(c->n <= ELEMENTSOF(next));
        n = calendar_spec_next_usec_many(spec, parse_utc(c->base), c->n, next);
        if (n < 0 || (size_t) n != expected)
                fail_msg("'%s' (TZ=%s) from %s: %d elapses, expected %zu", c->expr, c->tz, c->base, n, expected);

        for (size_t i = 0; i < expected; i++) {
                char buf[64];

                if (next[i] != parse_utc(c->next[i]))
                        fail_msg("'%s' (TZ=%s) from %s: elapse #%zu is %s, expected %s", c->expr, c->tz, c->base,
                                 i + 1, format_utc(next[i], buf), c->next[i]);
        }

        /* calendar_spec_next_usec() agrees, one step at a time. */
        for (size_t i = 0; i <= expected && i < c->n; i++) {
                usec_t t;
                int r;

                r = calendar_spec_next_usec(spec, i == 0 ? parse_utc(c->base) : next[i - 1], &t);
                if (i < expected) {
                        assert_int_equal(r, 0);
                        assert_true(t == next[i]);
                } else
                        assert_int_equal(r, -ENOENT);
        }
}

static void test_table(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check_case(cases + i);
}

/* The normalized form means the same as the original. */
static void test_normalized_round_trip(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Case c = cases[i];

                c.expr = c.normalized;
                check_case(&c);
        }
}

static const char *const invalid[] = {
        "", " ", "bogus", "Mon..Fry 10:00", "Mond", "Fri..Mon", "Mon..", "Mon.Tue", "Mon..Wed..Fri", "Mon,,Tue",
        "Mon, Tue 10:00", "*-*-* 25:00", "*-*-* 10:60", "*-*-* 10:00:60", "*-13-01", "*-00-01", "*-*-32", "*-*-00",
        "1969-01-01", "2200-01-01", "*-*-* 10:00 Mars/Olympus", "12:00 Europe", "12:00 Europe/", "12:00 europe/berlin",
        "*~29", "*~27,28", "*~1,2/3", "*~28/28", "*:*:0..0.5", "*:0/0", "today", "now", "tomorrow", "yesterday",
        "*/5", "*:*/5", "10", "10:00 Mon", "*-*-* 10:00:00.", "@", "@-1", "daily  UTC", " UTC", "UTC", "10.5:00",
        "*-*-* 1:2:3:4", "*-*-*-*", "2024-01~01-01", "*-*~*-1", "*-*-* 10:00 ", "\t*-*-*", "*-*-* 23..1:00",
        "*-*-* 0/24:00", "*-*-* 1/23:00", "monthly Mars", "99999999999999999999:00", "*:*:99999999999999",
};

static void test_invalid(void **state) {
        set_tz("UTC");

        for (size_t i = 0; i < ELEMENTSOF(invalid); i++) {
                _cleanup_free_ char *err = NULL, *prefix = NULL;
                CalendarSpec *spec = NULL;

                if (calendar_spec_from_string(invalid[i], &spec, &err) != -EINVAL)
                        fail_msg("'%s' was accepted", invalid[i]);
                assert_null(spec);
                assert_non_null(err);
                assert_true(asprintf(&prefix, "Invalid calendar expression '%s': ", invalid[i]) > 0);
                if (strncmp(err, prefix, strlen(prefix)) != 0 || strlen(err) == strlen(prefix))
                        fail_msg("unexpected message for '%s': %s", invalid[i], err);

                /* Validating without a result or message works too. */
                assert_int_equal(calendar_spec_from_string(invalid[i], NULL, NULL), -EINVAL);
        }

        assert_int_equal(calendar_spec_from_string(NULL, NULL, NULL), -EINVAL);
}

static void test_error_messages(void **state) {
        static const struct {
                const char *expr, *message;
        } table[] = {
                { "Mon..Fry 10:00", "unknown weekday 'Fry' at position 5" },
                { "Fri..Mon", "weekday range ends with Mon before it starts with Fri at position 5" },
                { "Mon..", "weekday range has no end at position 5" },
                { "*-*-* 25:00", "hour 25 is out of range 0..23 at position 6" },
                { "*-*-* 10:00:60", "second 60 is out of range 0..59.999999 at position 12" },
                { "1969-01-01", "year 1969 is out of range 1970..2199 at position 0" },
                { "*~29", "day ~29 is too far from the end of the month, at most ~28 at position 2" },
                { "*-*-* 1:2:3 Mars/Olympus", "unknown time zone 'Mars/Olympus' at position 12" },
                { "monthly Mars", "unknown time zone 'Mars' at position 8" },
                { "daily  UTC", "'daily' must stand alone, optionally followed by a time zone at position 0" },
                { "*:0/0", "repetition must not be zero at position 4" },
                { "10", "expected ':' after the hour, found end of expression at position 2" },
                { "*-*-* 10:00:00.", "expected digits after the decimal point, found end of expression at position 15" },
                { "", "empty expression" },
        };

        set_tz("UTC");
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *err = NULL, *expected = NULL;

                assert_int_equal(calendar_spec_from_string(table[i].expr, NULL, &err), -EINVAL);
                assert_true(asprintf(&expected, "Invalid calendar expression '%s': %s", table[i].expr, table[i].message) > 0);
                assert_string_equal(err, expected);
        }
}

static void test_list_limit(void **state) {
        _cleanup_free_ char *ok = NULL, *too_long = NULL;
        size_t n = 0;

        /* systemd accepts at most 241 elements in one list. */
        ok = malloc(16 + 242 * 10);
        too_long = malloc(16 + 242 * 10);
        assert_non_null(ok);
        assert_non_null(too_long);
        n = (size_t) sprintf(ok, "*-*-* 0:0:");
        for (unsigned i = 0; i < 241; i++)
                n += (size_t) sprintf(ok + n, "%s0.%06u", i > 0 ? "," : "", i);
        sprintf(too_long, "%s,0.000241", ok);

        assert_int_equal(calendar_spec_from_string(ok, NULL, NULL), 0);
        assert_int_equal(calendar_spec_from_string(too_long, NULL, NULL), -EINVAL);
}

static void test_next_usec_edges(void **state) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        usec_t t, many[3];

        set_tz("UTC");
        assert_int_equal(calendar_spec_from_string("*-*-* *:*:*", &spec, NULL), 0);

        /* Strictly after: an elapse is never returned for its own time. */
        assert_int_equal(calendar_spec_next_usec(spec, 1700000000 * USEC_PER_SEC, &t), 0);
        assert_true(t == 1700000001 * USEC_PER_SEC);
        assert_int_equal(calendar_spec_next_usec(spec, 1700000000 * USEC_PER_SEC - 1, &t), 0);
        assert_true(t == 1700000000 * USEC_PER_SEC);

        /* Like systemd, nothing after Thu 9999-12-30 23:59:59 UTC. */
        assert_int_equal(calendar_spec_next_usec(spec, USEC_INFINITY, &t), -EINVAL);
        assert_int_equal(calendar_spec_next_usec(spec, UINT64_C(253402214399000001), &t), -EINVAL);

        /* The last second of 2199 is the last one there is. */
        assert_int_equal(calendar_spec_next_usec(spec, UINT64_C(7258118398) * USEC_PER_SEC, &t), 0);
        assert_true(t == UINT64_C(7258118399) * USEC_PER_SEC);
        assert_int_equal(calendar_spec_next_usec(spec, UINT64_C(7258118399) * USEC_PER_SEC, &t), -ENOENT);
        assert_int_equal(calendar_spec_next_usec_many(spec, UINT64_C(7258118397) * USEC_PER_SEC, 3, many), 2);

        assert_int_equal(calendar_spec_next_usec_many(spec, 0, 0, NULL), 0);
        assert_int_equal(calendar_spec_next_usec(NULL, 0, &t), -EINVAL);
        assert_int_equal(calendar_spec_next_usec(spec, 0, NULL), 0);
}

/* An explicit zone is evaluated with $TZ switched in-process: afterwards the caller's $TZ and tzname[] are as
 * they were. */
static void test_zone_leaves_process_alone(void **state) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        usec_t next[2];

        set_tz("America/New_York");
        assert_int_equal(calendar_spec_from_string("*-*-* 12:00 Asia/Kolkata", &spec, NULL), 0);
        assert_int_equal(calendar_spec_next_usec_many(spec, parse_utc("2024-01-01 00:00:00"), 2, next), 2);
        assert_true(next[0] == parse_utc("2024-01-01 06:30:00"));
        assert_true(next[1] == parse_utc("2024-01-02 06:30:00"));

        assert_string_equal(getenv("TZ"), "America/New_York");
        assert_string_equal(tzname[0], "EST");
        assert_string_equal(tzname[1], "EDT");
}

static unsigned forks;

static void count_fork(void) {
        forks++;
}

/* The zone is switched in this process, not in a forked child (which cost a fork() and a wait in batchd's event
 * loop per computed fire); with $TZ unset before, it is unset after. */
static void test_zone_without_fork(void **state) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        struct tm tm;
        time_t t = (time_t) (parse_utc("2024-07-01 00:00:00") / USEC_PER_SEC);
        usec_t next;

        assert_int_equal(pthread_atfork(count_fork, NULL, NULL), 0);
        assert_int_equal(unsetenv("TZ"), 0);
        tzset();

        /* The DST change in Berlin (2024-03-31 02:00 CET -> 03:00 CEST) on the way. */
        assert_int_equal(calendar_spec_from_string("*-*-* 02:30 Europe/Berlin", &spec, NULL), 0);
        forks = 0;
        assert_int_equal(calendar_spec_next_usec(spec, parse_utc("2024-03-30 02:00:00"), &next), 0);
        assert_true(next == parse_utc("2024-04-01 00:30:00"));
        assert_int_equal(forks, 0);

        assert_null(getenv("TZ"));
        set_tz("Asia/Tokyo");
        assert_int_equal(calendar_spec_next_usec(spec, parse_utc("2024-03-30 02:00:00"), &next), 0);
        assert_true(next == parse_utc("2024-04-01 00:30:00"));
        assert_int_equal(forks, 0);
        assert_string_equal(getenv("TZ"), "Asia/Tokyo");
        assert_non_null(localtime_r(&t, &tm));
        assert_int_equal(tm.tm_hour, 9);
}

static char *print_analyze(const char *expr, const char *base, const char *now, unsigned iterations, int *ret_r) {
        _cleanup_free_ char *err = NULL;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        assert_non_null(f);
        *ret_r = calendar_spec_print_analyze(f, expr, parse_utc(base), parse_utc(now), iterations, &err);
        assert_int_equal(fclose(f), 0);
        if (*ret_r < 0) {
                assert_string_equal(buf, "");
                free(buf);
                return TAKE_PTR(err);
        }
        assert_null(err);
        return buf;
}

static void test_print_analyze(void **state) {
        char *s;
        int r;

        set_tz("Europe/Berlin");
        s = print_analyze("Mon..Fri 10:00", "2024-03-29 12:00:00", "2024-03-29 12:00:00", 3, &r);
        assert_int_equal(r, 0);
        assert_string_equal(s,
                            "  Original form: Mon..Fri 10:00\n"
                            "Normalized form: Mon..Fri *-*-* 10:00:00\n"
                            "    Next elapse: Mon 2024-04-01 10:00:00 CEST\n"
                            "       (in UTC): Mon 2024-04-01 08:00:00 UTC\n"
                            "       From now: 2 days left\n"
                            "       Iter. #2: Tue 2024-04-02 10:00:00 CEST\n"
                            "       (in UTC): Tue 2024-04-02 08:00:00 UTC\n"
                            "       From now: 3 days left\n"
                            "       Iter. #3: Wed 2024-04-03 10:00:00 CEST\n"
                            "       (in UTC): Wed 2024-04-03 08:00:00 UTC\n"
                            "       From now: 4 days left\n");
        free(s);

        set_tz("UTC");
        s = print_analyze("*-*-* 00:00:00", "2024-03-29 12:00:00", "2024-03-30 20:34:56", 2, &r);
        assert_int_equal(r, 0);
        assert_string_equal(s,
                            "Normalized form: *-*-* 00:00:00\n"
                            "    Next elapse: Sat 2024-03-30 00:00:00 UTC\n"
                            "       From now: 20h ago\n"
                            "       Iter. #2: Sun 2024-03-31 00:00:00 UTC\n"
                            "       From now: 3h 25min left\n");
        free(s);

        s = print_analyze("2000-01-01 ", "2024-03-29 12:00:00", "2024-03-29 12:00:00", 5, &r);
        assert_int_equal(r, 0);
        assert_string_equal(s,
                            "  Original form: 2000-01-01\n"
                            "Normalized form: 2000-01-01 00:00:00\n"
                            "    Next elapse: never\n");
        free(s);

        s = print_analyze("hourly", "2024-03-29 12:00:00", "2024-03-29 12:00:00", 0, &r);
        assert_int_equal(r, 0);
        assert_string_equal(s,
                            "  Original form: hourly\n"
                            "Normalized form: *-*-* *:00:00\n");
        free(s);

        s = print_analyze("Mon..Fry", "2024-03-29 12:00:00", "2024-03-29 12:00:00", 1, &r);
        assert_int_equal(r, -EINVAL);
        assert_string_equal(s, "Invalid calendar expression 'Mon..Fry': unknown weekday 'Fry' at position 5");
        free(s);
}

/* systemd's relative timestamps, the further away the coarser. */
static void test_print_from_now(void **state) {
        static const struct {
                int64_t before;         /* µs between now and the elapse, negative if it is in the past */
                const char *text;
        } table[] = {
                { 0,                                   "now" },
                { 500,                                 "500us left" },
                { 1500,                                "1ms left" },
                { 30 * USEC_PER_SEC,                   "30s left" },
                { 90 * USEC_PER_SEC,                   "1min 30s left" },
                { 299 * USEC_PER_SEC,                  "4min 59s left" },
                { 600 * USEC_PER_SEC,                  "10min left" },
                { 5400 * USEC_PER_SEC,                 "1h 30min left" },
                { 7 * 3600 * USEC_PER_SEC,             "7h left" },
                { 30 * 3600 * USEC_PER_SEC,            "1 day 6h left" },
                { 3 * 86400 * USEC_PER_SEC,            "3 days left" },
                { 10 * 86400 * USEC_PER_SEC,           "1 week 3 days left" },
                { 40 * 86400 * USEC_PER_SEC,           "1 month 9 days left" },
                { 400 * 86400 * USEC_PER_SEC,          "1 year 1 month left" },
                { -(int64_t) (731 * 86400 * USEC_PER_SEC), "2 years 0 months ago" },
                { -(int64_t) (61 * USEC_PER_SEC),      "1min 1s ago" },
        };
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        usec_t elapse = parse_utc("2024-04-02 00:00:00");

        set_tz("UTC");
        assert_int_equal(calendar_spec_from_string("daily", &spec, NULL), 0);

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *buf = NULL, *expected = NULL;
                size_t size = 0;
                FILE *f;

                f = open_memstream(&buf, &size);
                assert_non_null(f);
                assert_int_equal(calendar_spec_print_elapses(f, spec, "daily", parse_utc("2024-04-01 12:00:00"),
                                                             (usec_t) ((int64_t) elapse - table[i].before), 1, NULL), 0);
                assert_int_equal(fclose(f), 0);
                assert_true(asprintf(&expected, "       From now: %s\n", table[i].text) > 0);
                assert_non_null(strstr(buf, expected));
        }
}

static void test_print_elapses(void **state) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        _cleanup_free_ char *buf = NULL, *err = NULL;
        size_t size = 0;
        FILE *f;

        set_tz("UTC");
        assert_int_equal(calendar_spec_from_string("quarterly", &spec, NULL), 0);
        f = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_int_equal(calendar_spec_print_elapses(f, spec, "quarterly", parse_utc("2024-02-01 00:00:00"),
                                                     parse_utc("2024-02-01 00:00:00"), 1, &err), 0);
        assert_int_equal(fclose(f), 0);
        assert_null(err);
        assert_string_equal(buf,
                            "  Original form: quarterly\n"
                            "Normalized form: *-01,04,07,10-01 00:00:00\n"
                            "    Next elapse: Mon 2024-04-01 00:00:00 UTC\n"
                            "       From now: 1 month 29 days left\n");

        /* Beyond the last time systemd computes elapses for: the error, and nothing printed. */
        buf = mfree(buf);
        f = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_int_equal(calendar_spec_print_elapses(f, spec, "quarterly", USEC_INFINITY - 1, 0, 1, &err), -EINVAL);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(buf, "");
        assert_string_equal(err, "Failed to determine next elapse for 'quarterly': Invalid argument");
}

static void test_sub_daily(void **state) {
        static const struct {
                const char *expr;
                bool sub_daily;
        } sub_daily_cases[] = {
                { "daily",                   false },
                { "*-*-* 02:00:00",          false },
                { "Mon..Fri 10:30",          false },
                { "weekly",                  false },
                { "*-*-1 00:00:00 UTC",      false },
                { "02:00:00.5",              false },
                { "hourly",                  true  },
                { "minutely",                true  },
                { "*:*:0/1",                 true  },
                { "*:0/15",                  true  },
                { "*-*-* 08,20:00",          true  },
                { "*-*-* 08..09:00",         true  },
                { "*-*-* 02:00:00,30",       true  },
                { "*-*-* 10:00/30",          true  },
        };

        for (size_t i = 0; i < ELEMENTSOF(sub_daily_cases); i++) {
                _cleanup_(calendar_spec_freep) CalendarSpec *c = NULL;

                if (calendar_spec_from_string(sub_daily_cases[i].expr, &c, NULL) < 0)
                        fail_msg("cannot parse '%s'", sub_daily_cases[i].expr);
                if (calendar_spec_is_sub_daily(c) != sub_daily_cases[i].sub_daily)
                        fail_msg("'%s': sub-daily should be %s", sub_daily_cases[i].expr, sub_daily_cases[i].sub_daily ? "true" : "false");
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sub_daily),
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_normalized_round_trip),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_error_messages),
                cmocka_unit_test(test_list_limit),
                cmocka_unit_test(test_next_usec_edges),
                cmocka_unit_test(test_zone_leaves_process_alone),
                cmocka_unit_test(test_zone_without_fork),
                cmocka_unit_test(test_print_analyze),
                cmocka_unit_test(test_print_elapses),
                cmocka_unit_test(test_print_from_now),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
