/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"
#include "time-util.h"

/* A systemd.time(7) calendar event ("OnCalendar=" syntax). Parsing, the normalized form and the next
 * elapse agree with systemd-analyze calendar of systemd 252. See docs/calendar.md. */
typedef struct CalendarSpec CalendarSpec;

/* On error returns -EINVAL and, when ret_error is given, a sentence saying what is wrong and where
 * ("Invalid calendar expression 'Mon..Fry 10:00': unknown weekday 'Fry' at position 5"; positions are
 * 0-based byte offsets into p). ret may be NULL to merely validate p.
 *
 * Expressions without a time zone, and those naming the local zone's abbreviations (e.g. "CET"/"CEST"
 * when the local zone is Europe/Berlin), are interpreted in the process' local time zone ($TZ or
 * /etc/localtime) as it is when calendar_spec_next_usec() is called. */
int calendar_spec_from_string(const char *p, CalendarSpec **ret, char **ret_error);
CalendarSpec *calendar_spec_free(CalendarSpec *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CalendarSpec *, calendar_spec_free);

/* The normalized form systemd-analyze prints as "Normalized form:". */
int calendar_spec_to_string(const CalendarSpec *c, char **ret);

/* Whether the expression can elapse more than once on one day: its hour, minute or second matches more than
 * one value ("hourly", "*:0/15", "*-*-* 08,20:00"). Decided from the expression alone, without evaluating
 * elapses. */
bool calendar_spec_is_sub_daily(const CalendarSpec *c) _pure_;

/* The first elapse strictly after the given time (CLOCK_REALTIME µs). -ENOENT when it never elapses again.
 *
 * An expression with an explicit time zone ("... Europe/Berlin") is evaluated as systemd does, with $TZ set
 * to the zone, but in this process: $TZ is switched and tzset() called for the computation, and both are
 * restored before returning, so the caller sees its own $TZ and tzset() state afterwards. The price is a
 * threading invariant: while the call runs no other thread may read the environment or convert local time
 * (localtime_r(), mktime(), strftime()). batchd and batchctl are single-threaded; a worker thread that
 * formats local time must not be added to a process that calls this (docs/reliability.md, "Calendar time
 * zones"). */
int calendar_spec_next_usec(const CalendarSpec *c, usec_t after, usec_t *ret);

/* Up to n consecutive elapses: ret[0] is the first elapse strictly after 'after', ret[i] the first one
 * strictly after ret[i-1]. Returns how many were stored, fewer than n (possibly 0) when the event stops
 * elapsing, or a negative errno on failure. Switches $TZ at most once whatever n is. */
int calendar_spec_next_usec_many(const CalendarSpec *c, usec_t after, size_t n, usec_t *ret);

/* Prints for one expression exactly what "systemd-analyze calendar --base-time=@<base>
 * --iterations=<iterations> <expr>" prints with stdout not a terminal: "Original form" (only if it differs
 * from the normalized form), "Normalized form", "Next elapse", "(in UTC)" (only when the local zone is not
 * UTC), "From now", then "Iter. #2", … Times are shown in the local time zone. "From now" is measured from
 * 'now' (systemd-analyze uses the real clock), which keeps the output reproducible.
 *
 * Nothing is printed on failure: -EINVAL for an invalid expression, or the error of the next-elapse
 * computation; ret_error (optional) then gets the message systemd-analyze would log. Returns 0 on
 * success. */
int calendar_spec_print_analyze(
                FILE *f,
                const char *expr,
                usec_t base,
                usec_t now,
                unsigned iterations,
                char **ret_error);

/* The same for an already parsed expression; expr is its text as written, shown as "Original form". */
int calendar_spec_print_elapses(
                FILE *f,
                const CalendarSpec *spec,
                const char *expr,
                usec_t base,
                usec_t now,
                unsigned iterations,
                char **ret_error);
