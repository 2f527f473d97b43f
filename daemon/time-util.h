/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <time.h>

#include "macro.h"

typedef uint64_t usec_t;

/* Room for "YYYY-MM-DD HH:MM:SS.ffffff" (26 characters) and any year the compiler can imagine. */
#define TIMESTAMP_MAX 64
#define TIMESPAN_MAX 64

usec_t now_usec(clockid_t clock);

/* Spring Batch stores java.time.LocalDateTime, i.e. local wall-clock time, as 'YYYY-MM-DD HH:MM:SS.ffffff'. */
char *timestamp_format(usec_t t, char buf[static TIMESTAMP_MAX]);
int timestamp_parse(const char *s, usec_t *ret);
/* The same in local time (utc = false, what the two above do) or in UTC: batchd.conf's "timestamps". Local
 * wall-clock text repeats in the autumn DST hour, so a parse of such a time picks one of the two instants. */
char *timestamp_format_zone(usec_t t, bool utc, char buf[static TIMESTAMP_MAX]);
int timestamp_parse_zone(const char *s, bool utc, usec_t *ret);

#define TIMESTAMP_RELATIVE_MAX 64
/* "3h 5min left", "2 days ago", as systemd prints them next to timestamps. */
char *timestamp_format_relative(usec_t t, usec_t now, char buf[static TIMESTAMP_RELATIVE_MAX]);

/* systemd.time(7) time spans: "90s", "5min", "1h 30min", "1.5h", "infinity". A bare number is seconds. Accepts
 * exactly what systemd 252's parse_sec() accepts, with the same value; -EINVAL for bad syntax, -ERANGE for a
 * negative number or one that does not fit (584542 years and more). */
int timespan_parse(const char *s, usec_t *ret);
char *timespan_format(usec_t t, char buf[static TIMESPAN_MAX]);
