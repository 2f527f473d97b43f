/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"
#include "time-util.h"

/* A systemd.time(7) calendar event ("OnCalendar=" syntax). Parsing, the normalized form and the next
 * elapse agree with systemd-analyze calendar of systemd 252. */
typedef struct CalendarSpec CalendarSpec;

/* On error returns -EINVAL and, when ret_error is given, a sentence saying what is wrong and where. */
int calendar_spec_from_string(const char *p, CalendarSpec **ret, char **ret_error);
CalendarSpec *calendar_spec_free(CalendarSpec *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CalendarSpec *, calendar_spec_free);

/* The normalized form systemd-analyze prints as "Normalized form:". */
int calendar_spec_to_string(const CalendarSpec *c, char **ret);

/* The first elapse strictly after the given time (CLOCK_REALTIME µs). -ENOENT when it never elapses again. */
int calendar_spec_next_usec(const CalendarSpec *c, usec_t after, usec_t *ret);
