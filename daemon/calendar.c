/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* systemd.time(7) calendar events. The grammar, the normalized form and the elapse computation follow the
 * behaviour of systemd 252 (src/shared/calendarspec.c) exactly, including its quirks around daylight saving
 * time, because timers configured for batchd must fire when the same OnCalendar= expression would fire in
 * a systemd timer unit. tests/test-calendar-diff.c checks this against systemd-analyze. */

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "calendar.h"

#define WEEKDAYS_ALL 127
#define YEAR_MIN 1970
#define YEAR_MAX 2199

/* systemd limits each comma-separated list to 241 elements. */
#define CHAIN_ITEMS_MAX 241

/* systemd gives up after this many rounds of the elapse search (it only happens for pathological time
 * zone data) rather than looping forever. */
#define SEARCH_ROUNDS_MAX 1000

/* Thu 9999-12-30 23:59:59 UTC: systemd refuses to compute elapses after this. */
#define USEC_FORMATTABLE_MAX ((usec_t) 253402214399000000ULL)

#define ZONEINFO_DIR "/usr/share/zoneinfo/"

/* Whether c ends the string or is one of the characters in set. */
static bool end_or_one_of(char c, const char *set) {
        return c == '\0' || strchr(set, c);
}

typedef enum CalendarField {
        CAL_YEAR,
        CAL_MONTH,
        CAL_DAY,
        CAL_HOUR,
        CAL_MINUTE,
        CAL_SECOND,     /* stored in µs, so that fractional seconds can be expressed */
        _CAL_FIELD_MAX,
} CalendarField;

static const struct {
        const char *name;
        int min, max;
        int width;      /* digits in the normalized form */
} field_info[_CAL_FIELD_MAX] = {
        [CAL_YEAR]   = { "year",   YEAR_MIN, YEAR_MAX,                  4 },
        [CAL_MONTH]  = { "month",  1,        12,                        2 },
        [CAL_DAY]    = { "day",    1,        31,                        2 },
        [CAL_HOUR]   = { "hour",   0,        23,                        2 },
        [CAL_MINUTE] = { "minute", 0,        59,                        2 },
        [CAL_SECOND] = { "second", 0,        60 * (int) USEC_PER_SEC - 1, 2 },
};

/* One element of a comma-separated list: "start", "start..stop", "start/repeat" or "start..stop/repeat". */
typedef struct CalendarComponent {
        int start;
        int stop;       /* -1 if not a range */
        int repeat;     /* 0 if not repeating */
        size_t pos;     /* where it was written, for error messages */
} CalendarComponent;

/* No items means "*". */
typedef struct CalendarChain {
        CalendarComponent *items;
        size_t n;
} CalendarChain;

struct CalendarSpec {
        int weekdays;           /* bit 0 is Monday; -1 means any day */
        bool end_of_month;      /* the day chain counts from the end of the month ("~") */
        bool utc;
        int dst;                /* 0 or 1 if the local zone's standard/daylight abbreviation was given, else -1 */
        char *timezone;         /* IANA zone name, or NULL for local time */
        CalendarChain fields[_CAL_FIELD_MAX];
};

typedef struct Parser {
        const char *expr;       /* the expression as given, quoted in messages */
        const char *base;       /* start of the text being parsed; a prefix copy of expr */
        const char *p;          /* cursor */
        char *error;
        bool oom;
} Parser;

/* More than one value of the field: "*", a list of different values, a range or a repetition that steps. */
static bool chain_matches_several(const CalendarChain *ch, CalendarField f) {
        if (ch->n == 0)
                return true;
        for (size_t i = 0; i < ch->n; i++) {
                const CalendarComponent *c = ch->items + i;
                int last = c->stop >= 0 ? c->stop : field_info[f].max;

                if (c->start != ch->items[0].start)
                        return true;
                if (c->repeat > 0 ? c->start + c->repeat <= last : c->stop > c->start)
                        return true;
        }
        return false;
}

bool calendar_spec_is_sub_daily(const CalendarSpec *c) {
        if (!c)
                return false;
        for (CalendarField f = CAL_HOUR; f < _CAL_FIELD_MAX; f++)
                if (chain_matches_several(c->fields + f, f))
                        return true;
        return false;
}

CalendarSpec *calendar_spec_free(CalendarSpec *c) {
        if (!c)
                return NULL;

        for (CalendarField f = 0; f < _CAL_FIELD_MAX; f++)
                free(c->fields[f].items);
        free(c->timezone);
        return mfree(c);
}

static size_t parser_pos(const Parser *ps, const char *at) {
        return (size_t) (at - ps->base);
}

_printf_(3, 4)
static int parser_fail(Parser *ps, const char *at, const char *format, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;
        int k;

        /* Keep the first failure: that is where parsing stopped. */
        if (ps->error || ps->oom)
                return -EINVAL;

        va_start(ap, format);
        k = vasprintf(&what, format, ap);
        va_end(ap);
        if (k < 0) {
                what = NULL; /* undefined after a failure */
                ps->oom = true;
                return -EINVAL;
        }

        if (at)
                k = asprintf(&ps->error, "Invalid calendar expression '%s': %s at position %zu",
                             ps->expr, what, parser_pos(ps, at));
        else
                k = asprintf(&ps->error, "Invalid calendar expression '%s': %s", ps->expr, what);
        if (k < 0) {
                ps->error = NULL;
                ps->oom = true;
        }
        return -EINVAL;
}

/* A short human description of what is found at 'at', for messages. */
static const char *describe_char(const char *at, char buf[static 16]) {
        if (*at == '\0')
                return "end of expression";
        if (isprint((unsigned char) *at))
                snprintf(buf, 16, "'%c'", *at);
        else
                snprintf(buf, 16, "byte 0x%02x", (unsigned) (unsigned char) *at);
        return buf;
}

static size_t word_length(const char *s) {
        size_t n = 0;

        while (isalnum((unsigned char) s[n]))
                n++;
        return n;
}

static const struct {
        const char *name;
        CalendarField zero_from;        /* this and all smaller fields become 0 (or the 1st) */
        bool monday;
        int months[4];                  /* 0-terminated */
} shorthands[] = {
        { "minutely",      CAL_SECOND },
        { "hourly",        CAL_MINUTE },
        { "daily",         CAL_HOUR },
        { "weekly",        CAL_HOUR, .monday = true },
        { "monthly",       CAL_DAY },
        { "yearly",        CAL_MONTH, .months = { 1 } },
        { "annually",      CAL_MONTH, .months = { 1 } },
        { "anually",       CAL_MONTH, .months = { 1 } },    /* sic, systemd accepts this */
        { "quarterly",     CAL_MONTH, .months = { 1, 4, 7, 10 } },
        { "semiannually",  CAL_MONTH, .months = { 1, 7 } },
        { "semi-annually", CAL_MONTH, .months = { 1, 7 } },
        { "biannually",    CAL_MONTH, .months = { 1, 7 } },
        { "bi-annually",   CAL_MONTH, .months = { 1, 7 } },
};

/* Index of the shorthand s[0..n) spells (in any case), or -1. */
static int shorthand_lookup(const char *s, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(shorthands); i++)
                if (strlen(shorthands[i].name) == n && strncasecmp(s, shorthands[i].name, n) == 0)
                        return (int) i;
        return -1;
}

static int chain_append(Parser *ps, CalendarChain *chain, CalendarComponent comp) {
        CalendarComponent *items;

        items = reallocarray(chain->items, chain->n + 1, sizeof(CalendarComponent));
        if (!items) {
                ps->oom = true;
                return -ENOMEM;
        }
        items[chain->n++] = comp;
        chain->items = items;
        return 0;
}

static void chain_clear(CalendarChain *chain) {
        chain->items = mfree(chain->items);
        chain->n = 0;
}

static int chain_set_const(Parser *ps, CalendarChain *chain, int value) {
        return chain_append(ps, chain, (CalendarComponent) { .start = value, .stop = -1 });
}

/* Up to six decimals after the point; a seventh decides rounding and further digits are ignored, the
 * way systemd reads fractional seconds. */
static int parse_fraction(Parser *ps, unsigned *ret) {
        const char *s = ps->p;
        unsigned v = 0;
        size_t i;

        for (i = 0; i < 6 && isdigit((unsigned char) *s); i++, s++)
                v = v * 10 + (unsigned) (*s - '0');
        if (i == 0) {
                char buf[16];

                return parser_fail(ps, s, "expected digits after the decimal point, found %s", describe_char(s, buf));
        }
        for (; i < 6; i++)
                v *= 10;
        if (*s >= '5' && *s <= '9')
                v++;
        s += strspn(s, "0123456789");

        ps->p = s;
        *ret = v;
        return 0;
}

static int parse_number(Parser *ps, bool usec, int *ret) {
        const char *at = ps->p;
        unsigned long v;
        char *end;

        if (!isdigit((unsigned char) *at)) {
                char buf[16];

                if (isalpha((unsigned char) *at)) {
                        int n = (int) word_length(at);

                        if (at == ps->base && shorthand_lookup(at, (size_t) n) >= 0)
                                return parser_fail(ps, at, "'%.*s' must stand alone, optionally followed by a time zone",
                                                   n, at);
                        return parser_fail(ps, at, "%s '%.*s'",
                                           at == ps->base ? "unknown weekday or keyword" : "expected a number, found",
                                           n, at);
                }
                return parser_fail(ps, at, "expected a number, found %s", describe_char(at, buf));
        }

        errno = 0;
        v = strtoul(at, &end, 10);
        if (errno != 0)
                return parser_fail(ps, at, "number '%.*s' is too large", (int) (end - at), at);
        ps->p = end;

        if (usec) {
                if (v > ULONG_MAX / USEC_PER_SEC)
                        return parser_fail(ps, at, "number '%.*s' is too large", (int) (end - at), at);
                v *= USEC_PER_SEC;

                /* A single dot starts the fraction, two dots are a range. */
                if (end[0] == '.' && end[1] != '.') {
                        unsigned frac = 0;
                        int r;

                        ps->p = end + 1;
                        r = parse_fraction(ps, &frac);
                        if (r < 0)
                                return r;
                        v += frac;
                }
        }

        if (v > INT_MAX)
                return parser_fail(ps, at, "number '%.*s' is too large", (int) (ps->p - at), at);

        *ret = (int) v;
        return 0;
}

/* A comma-separated list of components, or "*". A "*" for the seconds means every full second. */
static int parse_chain(Parser *ps, bool usec, CalendarChain *ret) {
        CalendarChain chain = {};
        int r;

        if (*ps->p == '*') {
                ps->p++;
                if (usec) {
                        r = chain_append(ps, &chain, (CalendarComponent) {
                                        .start = 0,
                                        .stop = -1,
                                        .repeat = (int) USEC_PER_SEC,
                                        .pos = parser_pos(ps, ps->p - 1),
                                });
                        if (r < 0)
                                return r;
                }
                *ret = chain;
                return 0;
        }

        for (;;) {
                CalendarComponent comp = { .stop = -1, .pos = parser_pos(ps, ps->p) };
                const char *at = ps->p;
                char buf[16];

                if (chain.n >= CHAIN_ITEMS_MAX) {
                        chain_clear(&chain);
                        return parser_fail(ps, at, "list has more than %d elements", CHAIN_ITEMS_MAX);
                }

                r = parse_number(ps, usec, &comp.start);
                if (r < 0)
                        goto fail;

                if (ps->p[0] == '.' && ps->p[1] == '.') {
                        ps->p += 2;
                        r = parse_number(ps, usec, &comp.stop);
                        if (r < 0)
                                goto fail;
                        comp.repeat = usec ? (int) USEC_PER_SEC : 1;
                }

                if (*ps->p == '/') {
                        const char *rep = ++ps->p;

                        r = parse_number(ps, usec, &comp.repeat);
                        if (r < 0)
                                goto fail;
                        if (comp.repeat == 0) {
                                r = parser_fail(ps, rep, "repetition must not be zero");
                                goto fail;
                        }
                } else {
                        if (comp.start > INT_MAX - comp.repeat) {
                                r = parser_fail(ps, at, "number is too large");
                                goto fail;
                        }
                        /* Without an explicit repetition a seconds range steps by one second, so it
                         * must span at least that. */
                        if (usec && comp.stop >= 0 && comp.start + comp.repeat > comp.stop) {
                                r = parser_fail(ps, at, "seconds range '%.*s' is shorter than one second",
                                                (int) (ps->p - at), at);
                                goto fail;
                        }
                }

                if (!end_or_one_of(*ps->p, " ,-~:")) {
                        r = parser_fail(ps, ps->p, "unexpected %s", describe_char(ps->p, buf));
                        goto fail;
                }

                r = chain_append(ps, &chain, comp);
                if (r < 0)
                        goto fail;

                if (*ps->p != ',')
                        break;
                ps->p++;
        }

        *ret = chain;
        return 0;

fail:
        chain_clear(&chain);
        return r;
}

static const struct {
        const char *name;
        int nr;
} weekday_names[] = {
        /* The full name first, so that the longest match wins. */
        { "Monday",    0 },
        { "Mon",       0 },
        { "Tuesday",   1 },
        { "Tue",       1 },
        { "Wednesday", 2 },
        { "Wed",       2 },
        { "Thursday",  3 },
        { "Thu",       3 },
        { "Friday",    4 },
        { "Fri",       4 },
        { "Saturday",  5 },
        { "Sat",       5 },
        { "Sunday",    6 },
        { "Sun",       6 },
};

static const char *const weekday_abbrev[7] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };

/* Returns the index into weekday_names[] of the name p starts with, or -1. */
static int weekday_lookup(const char *p) {
        for (size_t i = 0; i < ELEMENTSOF(weekday_names); i++)
                if (strncasecmp(p, weekday_names[i].name, strlen(weekday_names[i].name)) == 0)
                        return (int) i;
        return -1;
}

/* An optional leading list of weekdays and weekday ranges: "Mon,Wed..Fri ". */
static int parse_weekdays(Parser *ps, CalendarSpec *c) {
        int range_from = -1;    /* start of the last range ("a..b" or "a-b"), until a ',' follows */
        bool first = true;

        for (;;) {
                const char *at = ps->p;
                char buf[16];
                size_t len;
                int i, nr;

                i = weekday_lookup(at);
                if (i < 0) {
                        if (first)
                                return 0; /* No weekdays, the date follows. */
                        if (word_length(at) > 0)
                                return parser_fail(ps, at, "unknown weekday '%.*s'", (int) word_length(at), at);
                        return parser_fail(ps, at, "expected a weekday, found %s", describe_char(at, buf));
                }

                len = strlen(weekday_names[i].name);
                nr = weekday_names[i].nr;

                if (!end_or_one_of(at[len], "-., ")) {
                        if (isalnum((unsigned char) at[len]))
                                return parser_fail(ps, at, "unknown weekday '%.*s'", (int) word_length(at), at);
                        return parser_fail(ps, at + len, "unexpected %s after weekday '%.*s'",
                                           describe_char(at + len, buf), (int) len, at);
                }

                c->weekdays |= 1 << nr;
                if (range_from >= 0) {
                        if (range_from > nr)
                                return parser_fail(ps, at, "weekday range ends with %s before it starts with %s",
                                                   weekday_abbrev[nr], weekday_abbrev[range_from]);
                        for (int d = range_from + 1; d < nr; d++)
                                c->weekdays |= 1 << d;
                }
                ps->p += len;

                if (*ps->p == '\0')
                        return 0;
                if (*ps->p == ' ') {
                        ps->p += strspn(ps->p, " ");
                        return 0;
                }

                if (*ps->p == '.' || *ps->p == '-') {
                        if (range_from >= 0)
                                return parser_fail(ps, ps->p, "a weekday range cannot continue another range");
                        if (*ps->p == '.' && ps->p[1] != '.')
                                return parser_fail(ps, ps->p, "expected '..' for a weekday range");
                        range_from = nr;
                        ps->p += *ps->p == '.' ? 2 : 1; /* "-" is the old spelling of ".." */
                } else {
                        /* ',' */
                        range_from = -1;
                        ps->p++;
                }

                /* A trailing comma is fine, an open range is not. */
                if (end_or_one_of(*ps->p, " ")) {
                        if (range_from >= 0)
                                return parser_fail(ps, ps->p, "weekday range has no end");
                        ps->p += strspn(ps->p, " ");
                        return 0;
                }

                first = false;
        }
}

static int spec_from_epoch(Parser *ps, CalendarSpec *c, const char *at) {
        unsigned long v;
        struct tm tm;
        time_t t;
        char *end;
        int r;

        errno = 0;
        v = strtoul(at + 1, &end, 10);
        if (errno != 0 || end == at + 1)
                return parser_fail(ps, at, "expected seconds since the epoch after '@'");

        t = (time_t) v;
        if ((unsigned long) t != v || !gmtime_r(&t, &tm) || tm.tm_year > INT_MAX - 1900)
                return parser_fail(ps, at, "time '%.*s' is out of range", (int) (end - at), at);

        for (CalendarField f = 0; f < _CAL_FIELD_MAX; f++)
                chain_clear(&c->fields[f]);

        r = chain_set_const(ps, &c->fields[CAL_YEAR], tm.tm_year + 1900);
        if (r >= 0)
                r = chain_set_const(ps, &c->fields[CAL_MONTH], tm.tm_mon + 1);
        if (r >= 0)
                r = chain_set_const(ps, &c->fields[CAL_DAY], tm.tm_mday);
        if (r >= 0)
                r = chain_set_const(ps, &c->fields[CAL_HOUR], tm.tm_hour);
        if (r >= 0)
                r = chain_set_const(ps, &c->fields[CAL_MINUTE], tm.tm_min);
        if (r >= 0)
                r = chain_set_const(ps, &c->fields[CAL_SECOND], tm.tm_sec * (int) USEC_PER_SEC);
        if (r < 0)
                return r;
        for (CalendarField f = 0; f < _CAL_FIELD_MAX; f++)
                c->fields[f].items[0].pos = parser_pos(ps, at);

        c->utc = true;
        ps->p = end;
        return 0;
}

/* "[[year-]month-]day" (with "~" instead of the last "-" for days counted from the end of the month) or
 * "@seconds". Returns 1 if the whole point in time was given with '@', 0 otherwise. Leaves the cursor
 * alone if what follows is a time rather than a date. */
static int parse_date(Parser *ps, CalendarSpec *c) {
        CalendarChain parts[3] = {};
        const char *sep, *saved = ps->p;
        size_t n = 0;
        char buf[16];
        int r;

        if (*ps->p == '\0')
                return 0;

        if (*ps->p == '@') {
                r = spec_from_epoch(ps, c, ps->p);
                return r < 0 ? r : 1;
        }

        r = parse_chain(ps, false, &parts[n++]);
        if (r < 0)
                goto finish;

        if (end_or_one_of(*ps->p, ":")) {
                /* That was an hour. */
                ps->p = saved;
                r = 0;
                goto finish;
        }

        for (;;) {
                sep = ps->p;
                if (*sep == '~')
                        c->end_of_month = true;
                else if (*sep != '-') {
                        r = parser_fail(ps, sep, "unexpected %s in date", describe_char(sep, buf));
                        goto finish;
                }
                ps->p++;

                r = parse_chain(ps, false, &parts[n++]);
                if (r < 0)
                        goto finish;

                if (end_or_one_of(*ps->p, " "))
                        break;

                if (n == 3) {
                        r = parser_fail(ps, ps->p, "unexpected %s after date", describe_char(ps->p, buf));
                        goto finish;
                }
                if (c->end_of_month) {
                        r = parser_fail(ps, sep, "'~' may only precede the day");
                        goto finish;
                }
        }

        ps->p += strspn(ps->p, " ");
        if (n == 3) {
                c->fields[CAL_YEAR] = parts[0];
                c->fields[CAL_MONTH] = parts[1];
                c->fields[CAL_DAY] = parts[2];
        } else {
                c->fields[CAL_MONTH] = parts[0];
                c->fields[CAL_DAY] = parts[1];
        }
        return 0;

finish:
        for (size_t i = 0; i < n; i++)
                chain_clear(&parts[i]);
        return r;
}

/* "hour:minute[:second]", or nothing at all for midnight. */
static int parse_time(Parser *ps, CalendarSpec *c) {
        CalendarChain h = {}, m = {}, s = {};
        char buf[16];
        int r;

        if (*ps->p == '\0') {
                r = chain_set_const(ps, &h, 0);
                if (r >= 0)
                        r = chain_set_const(ps, &m, 0);
                if (r >= 0)
                        r = chain_set_const(ps, &s, 0);
                if (r < 0)
                        goto fail;
                goto done;
        }

        r = parse_chain(ps, false, &h);
        if (r < 0)
                goto fail;
        if (*ps->p != ':') {
                r = parser_fail(ps, ps->p, "expected ':' after the hour, found %s", describe_char(ps->p, buf));
                goto fail;
        }
        ps->p++;

        r = parse_chain(ps, false, &m);
        if (r < 0)
                goto fail;

        if (*ps->p == '\0') {
                r = chain_set_const(ps, &s, 0);
                if (r < 0)
                        goto fail;
                goto done;
        }
        if (*ps->p != ':') {
                r = parser_fail(ps, ps->p, "expected ':' or the end after the minute, found %s",
                                describe_char(ps->p, buf));
                goto fail;
        }
        ps->p++;

        r = parse_chain(ps, true, &s);
        if (r < 0)
                goto fail;
        if (*ps->p != '\0') {
                r = parser_fail(ps, ps->p, "unexpected %s after the time", describe_char(ps->p, buf));
                goto fail;
        }

done:
        c->fields[CAL_HOUR] = h;
        c->fields[CAL_MINUTE] = m;
        c->fields[CAL_SECOND] = s;
        return 0;

fail:
        chain_clear(&h);
        chain_clear(&m);
        chain_clear(&s);
        return r;
}

/* The same checks systemd applies to a time zone name, including that the zoneinfo file exists and is a
 * TZif file: a trailing word is only taken for a zone if this says yes. */
static bool timezone_name_valid(const char *name) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        bool slash = false;
        struct stat st;
        char magic[4];
        size_t n = 0;

        if (isempty(name))
                return false;
        if (streq(name, "UTC"))
                return true;
        if (name[0] == '/')
                return false;

        for (const char *s = name; *s; s++) {
                bool ascii_alnum = (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z');

                if (!ascii_alnum && !strchr("-_+/", *s))
                        return false;
                if (*s == '/' && slash)
                        return false;
                slash = *s == '/';
        }
        if (slash || strlen(name) >= PATH_MAX)
                return false;

        if (asprintf(&path, ZONEINFO_DIR "%s", name) < 0) {
                path = NULL;
                return false;
        }

        fd = open(path, O_RDONLY|O_CLOEXEC);
        if (fd < 0)
                return false;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return false;

        while (n < sizeof(magic)) {
                ssize_t k = read(fd, magic + n, sizeof(magic) - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                n += (size_t) k;
        }
        return memcmp(magic, "TZif", 4) == 0;
}

/* Case-insensitive "ends with"; returns where the suffix starts. */
static const char *endswith_nocase(const char *s, size_t len, const char *suffix) {
        size_t sl = strlen(suffix);

        if (sl > len || strncasecmp(s + len - sl, suffix, sl) != 0)
                return NULL;
        return s + len - sl;
}

/* Splits off a trailing " UTC", the local zone's abbreviation (" CET", " CEST"), or an IANA zone name.
 * Returns the length of what precedes it. */
static int strip_timezone(Parser *ps, CalendarSpec *c, size_t *ret_len) {
        const char *p = ps->expr, *e, *space;
        size_t len = strlen(p);

        e = endswith_nocase(p, len, " UTC");
        if (e) {
                c->utc = true;
                *ret_len = (size_t) (e - p);
                return 0;
        }

        tzset();
        for (int j = 0; j <= 1; j++) {
                if (isempty(tzname[j]))
                        continue;
                e = endswith_nocase(p, len, tzname[j]);
                if (!e || e == p || e[-1] != ' ')
                        continue;

                c->dst = j;
                *ret_len = (size_t) (e - p - 1);
                return 0;
        }

        space = strrchr(p, ' ');
        if (space && timezone_name_valid(space + 1)) {
                c->timezone = strdup(space + 1);
                if (!c->timezone) {
                        ps->oom = true;
                        return -ENOMEM;
                }
                *ret_len = (size_t) (space - p);
                return 0;
        }

        *ret_len = len;
        return 0;
}

static int parse_shorthand(Parser *ps, CalendarSpec *c, const char *s) {
        int i, r;

        i = shorthand_lookup(s, strlen(s));
        if (i < 0)
                return 0;

        if (shorthands[i].monday)
                c->weekdays = 1;
        for (size_t k = 0; k < ELEMENTSOF(shorthands[i].months) && shorthands[i].months[k] > 0; k++) {
                r = chain_set_const(ps, &c->fields[CAL_MONTH], shorthands[i].months[k]);
                if (r < 0)
                        return r;
        }
        for (CalendarField f = MAX(shorthands[i].zero_from, CAL_DAY); f < _CAL_FIELD_MAX; f++) {
                r = chain_set_const(ps, &c->fields[f], f == CAL_DAY ? 1 : 0);
                if (r < 0)
                        return r;
        }
        return 1;
}

static int component_cmp(const void *a, const void *b) {
        const CalendarComponent *x = a, *y = b;

        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        if (x->stop != y->stop)
                return x->stop < y->stop ? -1 : 1;
        if (x->repeat != y->repeat)
                return x->repeat < y->repeat ? -1 : 1;
        return 0;
}

static void chain_normalize(CalendarChain *chain) {
        size_t k = 0;

        for (size_t i = 0; i < chain->n; i++) {
                CalendarComponent *comp = chain->items + i;

                /* "1..10/4" is "1..9/4": the range ends on the last value reached. */
                if (comp->stop > comp->start && comp->repeat > 0)
                        comp->stop -= (comp->stop - comp->start) % comp->repeat;

                /* A range of one value is that value. */
                if (comp->start == comp->stop) {
                        comp->stop = -1;
                        comp->repeat = 0;
                }
        }

        if (chain->n <= 1)
                return;

        qsort(chain->items, chain->n, sizeof(CalendarComponent), component_cmp);
        for (size_t i = 0; i < chain->n; i++)
                if (k == 0 || component_cmp(chain->items + k - 1, chain->items + i) != 0)
                        chain->items[k++] = chain->items[i];
        chain->n = k;
}

static void spec_normalize(CalendarSpec *c) {
        if (c->timezone && streq(c->timezone, "UTC")) {
                c->utc = true;
                c->timezone = mfree(c->timezone);
        }

        if (c->weekdays <= 0 || c->weekdays >= WEEKDAYS_ALL)
                c->weekdays = -1;

        if (c->end_of_month && c->fields[CAL_DAY].n == 0)
                c->end_of_month = false;

        /* Two-digit years: 0..69 are 2000..2069, 70..99 are 1970..1999. */
        for (size_t i = 0; i < c->fields[CAL_YEAR].n; i++) {
                CalendarComponent *comp = c->fields[CAL_YEAR].items + i;

                if (comp->start >= 0 && comp->start < 100)
                        comp->start += comp->start < 70 ? 2000 : 1900;
                if (comp->stop >= 0 && comp->stop < 100)
                        comp->stop += comp->stop < 70 ? 2000 : 1900;
        }

        for (CalendarField f = 0; f < _CAL_FIELD_MAX; f++)
                chain_normalize(&c->fields[f]);
}

/* How a value of a field is written in messages: seconds may have a fraction. */
static char *value_to_string(CalendarField f, int v, char buf[static 32]) {
        if (f == CAL_SECOND) {
                if (v % (int) USEC_PER_SEC != 0)
                        snprintf(buf, 32, "%d.%06d", v / (int) USEC_PER_SEC, v % (int) USEC_PER_SEC);
                else
                        snprintf(buf, 32, "%d", v / (int) USEC_PER_SEC);
        } else
                snprintf(buf, 32, "%d", v);
        return buf;
}

static int spec_validate(Parser *ps, const CalendarSpec *c) {
        for (CalendarField f = 0; f < _CAL_FIELD_MAX; f++) {
                bool eom = f == CAL_DAY && c->end_of_month;
                int lo = field_info[f].min, hi = field_info[f].max;
                const char *name = field_info[f].name;

                for (size_t i = 0; i < c->fields[f].n; i++) {
                        const CalendarComponent *comp = c->fields[f].items + i;
                        const char *at = ps->base + comp->pos;
                        char a[32], b[32], x[32];

                        /* Counting from the end of the month only goes back 28 days. systemd lowers the limit
                         * by three more for each further element of the list (its check carries the lowered
                         * limit on to the next element), so "~3,4" is fine but "~27,28" is not. Do the same. */
                        if (eom)
                                hi -= 3;

                        if (eom && (comp->start > hi || comp->stop > hi))
                                return parser_fail(ps, at, "day ~%d is too far from the end of the month, at most ~%d%s",
                                                   MAX(comp->start, comp->stop), hi,
                                                   i > 0 ? " for this element (three less for each element "
                                                           "after the first, as in systemd)" : "");

                        if (comp->start < lo || comp->start > hi)
                                return parser_fail(ps, at, "%s %s is out of range %s..%s", name,
                                                   value_to_string(f, comp->start, x),
                                                   value_to_string(f, lo, a), value_to_string(f, hi, b));

                        if (comp->repeat > hi - lo)
                                return parser_fail(ps, at, "%s repetition /%s is too large", name,
                                                   value_to_string(f, comp->repeat, x));

                        if (comp->stop >= 0) {
                                if (comp->stop < lo || comp->stop > hi)
                                        return parser_fail(ps, at, "%s %s is out of range %s..%s",
                                                           name, value_to_string(f, comp->stop, x),
                                                           value_to_string(f, lo, a), value_to_string(f, hi, b));
                                if (comp->start + comp->repeat > comp->stop)
                                        return parser_fail(ps, at, "%s range %s..%s is empty", name,
                                                           value_to_string(f, comp->start, a),
                                                           value_to_string(f, comp->stop, b));
                        } else if (eom ? comp->start - comp->repeat < lo : comp->start + comp->repeat > hi)
                                return parser_fail(ps, at, "%s %s/%s never repeats within the %s", name,
                                                   value_to_string(f, comp->start, a),
                                                   value_to_string(f, comp->repeat, b),
                                                   f == CAL_YEAR ? "supported years" :
                                                   f == CAL_MONTH ? "year" :
                                                   f == CAL_DAY ? "month" :
                                                   f == CAL_HOUR ? "day" :
                                                   f == CAL_MINUTE ? "hour" : "minute");
                }
        }

        return 0;
}

/* Whether the word could be meant as an IANA zone name ("Europe/Berlin"). */
static bool looks_like_zone(const char *w) {
        bool alpha = false;

        for (const char *s = w; *s; s++) {
                if (!isascii((unsigned char) *s) || (!isalnum((unsigned char) *s) && !strchr("-_+/", *s)))
                        return false;
                alpha = alpha || isalpha((unsigned char) *s);
        }
        return alpha;
}

static int spec_parse(const char *p, bool hints, CalendarSpec **ret, char **ret_error);

static bool prefix_parses(const char *p, size_t n) {
        _cleanup_free_ char *prefix = strndup(p, n);

        return prefix && spec_parse(prefix, /* hints= */ false, NULL, NULL) >= 0;
}

static int spec_parse(const char *p, bool hints, CalendarSpec **ret, char **ret_error) {
        _cleanup_(calendar_spec_freep) CalendarSpec *c = NULL;
        _cleanup_free_ char *body = NULL;
        Parser ps = { .expr = p };
        size_t len;
        int r;

        if (!p)
                return -EINVAL;

        c = calloc(1, sizeof(CalendarSpec));
        if (!c)
                return -ENOMEM;
        c->dst = -1;

        r = strip_timezone(&ps, c, &len);
        if (r < 0)
                goto finish;

        body = strndup(p, len);
        if (!body) {
                r = -ENOMEM;
                goto finish;
        }
        ps.base = ps.p = body;

        if (isempty(body)) {
                r = parser_fail(&ps, NULL, "%s", isempty(p) ? "empty expression" : "no date or time given");
                goto finish;
        }

        r = parse_shorthand(&ps, c, body);
        if (r < 0)
                goto finish;
        if (r == 0) {
                r = parse_weekdays(&ps, c);
                if (r < 0)
                        goto finish;

                r = parse_date(&ps, c);
                if (r < 0)
                        goto finish;
                if (r == 0) {
                        r = parse_time(&ps, c);
                        if (r < 0)
                                goto finish;
                }

                if (*ps.p != '\0') {
                        char buf[16];

                        r = parser_fail(&ps, ps.p, "unexpected %s", describe_char(ps.p, buf));
                        goto finish;
                }
        }

        spec_normalize(c);

        r = spec_validate(&ps, c);
        if (r < 0)
                goto finish;

        if (ret)
                *ret = TAKE_PTR(c);
        r = 0;

finish:
        if (ps.oom)
                r = -ENOMEM;
        else if (r < 0 && r != -ENOMEM) {
                /* An unknown trailing zone name makes the rest fail to parse; say so rather than
                 * complaining about whatever the parser tripped over. It is one if the expression
                 * without it is fine, or if it looks like "Area/Location". */
                const char *space = strrchr(p, ' ');

                if (hints && space && !c->timezone && !c->utc && c->dst < 0 && looks_like_zone(space + 1) &&
                    (strchr(space + 1, '/') || prefix_parses(p, (size_t) (space - p)))) {
                        ps.error = mfree(ps.error);
                        ps.base = p;
                        (void) parser_fail(&ps, space + 1, "unknown time zone '%s'", space + 1);
                }
                r = -EINVAL;
        }
        if (r < 0 && ret_error && ps.error)
                *ret_error = TAKE_PTR(ps.error);
        free(ps.error);
        return r;
}

int calendar_spec_from_string(const char *p, CalendarSpec **ret, char **ret_error) {
        return spec_parse(p, /* hints= */ true, ret, ret_error);
}

static void format_weekdays(FILE *f, int weekdays) {
        bool comma = false;

        for (int d = 0; d < 7; d++) {
                int e = d;

                if (!(weekdays & (1 << d)))
                        continue;
                while (e + 1 < 7 && (weekdays & (1 << (e + 1))))
                        e++;

                /* Runs of three or more days are written as ranges, pairs as lists. */
                fprintf(f, "%s%s", comma ? "," : "", weekday_abbrev[d]);
                if (e > d)
                        fprintf(f, "%s%s", e > d + 1 ? ".." : ",", weekday_abbrev[e]);
                comma = true;
                d = e;
        }
}

static void format_value(FILE *f, int width, int v, int unit) {
        fprintf(f, "%0*d", width, v / unit);
        if (v % unit > 0)
                fprintf(f, ".%06d", v % unit);
}

static void format_chain(FILE *f, CalendarField field, const CalendarChain *chain) {
        int unit = field == CAL_SECOND ? (int) USEC_PER_SEC : 1;
        int width = field_info[field].width;

        if (chain->n == 0) {
                fputc('*', f);
                return;
        }

        /* If any element means "every second", that covers all others, and the whole list reads "*". */
        if (field == CAL_SECOND)
                for (size_t i = 0; i < chain->n; i++)
                        if (chain->items[i].start == 0 && chain->items[i].stop < 0 && chain->items[i].repeat == unit) {
                                fputc('*', f);
                                return;
                        }

        for (size_t i = 0; i < chain->n; i++) {
                const CalendarComponent *comp = chain->items + i;

                if (i > 0)
                        fputc(',', f);
                format_value(f, width, comp->start, unit);
                if (comp->stop > 0) {
                        fputs("..", f);
                        format_value(f, width, comp->stop, unit);
                }
                /* A range steps by one unit unless told otherwise. */
                if (comp->repeat > 0 && !(comp->stop > 0 && comp->repeat == unit)) {
                        fputc('/', f);
                        format_value(f, 0, comp->repeat, unit);
                }
        }
}

int calendar_spec_to_string(const CalendarSpec *c, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (!c || !ret)
                return -EINVAL;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        if (c->weekdays > 0 && c->weekdays <= WEEKDAYS_ALL) {
                format_weekdays(f, c->weekdays);
                fputc(' ', f);
        }

        format_chain(f, CAL_YEAR, &c->fields[CAL_YEAR]);
        fputc('-', f);
        format_chain(f, CAL_MONTH, &c->fields[CAL_MONTH]);
        fputc(c->end_of_month ? '~' : '-', f);
        format_chain(f, CAL_DAY, &c->fields[CAL_DAY]);
        fputc(' ', f);
        format_chain(f, CAL_HOUR, &c->fields[CAL_HOUR]);
        fputc(':', f);
        format_chain(f, CAL_MINUTE, &c->fields[CAL_MINUTE]);
        fputc(':', f);
        format_chain(f, CAL_SECOND, &c->fields[CAL_SECOND]);

        if (c->utc)
                fputs(" UTC", f);
        else if (c->timezone)
                fprintf(f, " %s", c->timezone);
        else if ((c->dst == 0 || c->dst == 1)) {
                /* The abbreviation the expression was written with, as the local zone spells it. */
                tzset();
                if (!isempty(tzname[c->dst]))
                        fprintf(f, " %s", tzname[c->dst]);
        }

        if (fflush(f) != 0 || ferror(f)) {
                fclose(f);
                return -ENOMEM;
        }
        fclose(f);

        *ret = TAKE_PTR(buf);
        return 0;
}

/* ---- Finding the next elapse ----
 *
 * The search walks a broken-down time from the year down to the µs, moving each field to the next value
 * its chain allows and letting mktime() renormalize after every step; when a field cannot match, the
 * next larger field is advanced and the walk starts over. The interplay with mktime() (which tm_isdst is
 * passed when, which fields are reset after a renormalization) is what decides the result around DST
 * changes and nonexistent days, so it is kept exactly as in systemd. */

static time_t tm_to_time(struct tm *tm, bool utc) {
        return utc ? timegm(tm) : mktime(tm);
}

/* The day of the month that is 'day' days before the end of tm's month ("~1" is the last day), or -1. */
static int end_of_month_day(const struct tm *tm, bool utc, int day) {
        struct tm t = *tm;

        t.tm_mon++;
        t.tm_mday = 1 - day;
        if (tm_to_time(&t, utc) < 0 || t.tm_mon != tm->tm_mon)
                return -1;
        return t.tm_mday;
}

/* Moves *val to the smallest value >= *val that the field's chain allows. Returns 1 if *val changed, 0 if
 * it already matched (or the field is "*"), -ENOENT if no value >= *val matches. */
static int chain_next_value(const CalendarSpec *spec, CalendarField field, const struct tm *tm, int *val) {
        const CalendarChain *chain = &spec->fields[field];
        bool eom = spec->end_of_month && field == CAL_DAY;
        bool found = false;
        int best = 0;

        if (chain->n == 0)
                return 0;

        for (size_t i = 0; i < chain->n; i++) {
                const CalendarComponent *comp = chain->items + i;
                int start = comp->start, stop = comp->stop, candidate;

                if (eom) {
                        /* Counted from the end, the range runs backwards. */
                        start = end_of_month_day(tm, spec->utc, comp->start);
                        stop = end_of_month_day(tm, spec->utc, comp->stop);
                        if (stop > 0) {
                                int t = start;

                                start = stop;
                                stop = t;
                        }
                }

                if (start >= *val)
                        candidate = start;
                else if (comp->repeat > 0) {
                        candidate = start + comp->repeat * ((*val - start + comp->repeat - 1) / comp->repeat);
                        if (stop >= 0 && candidate > stop)
                                continue;
                } else
                        continue;

                if (!found || candidate < best) {
                        best = candidate;
                        found = true;
                }
        }

        if (!found)
                return -ENOENT;
        if (best == *val)
                return 0;
        *val = best;
        return 1;
}

/* Lets mktime() renormalize *tm. Returns 1 if nothing changed, 0 if *tm moved forward (a field overflowed,
 * or the wall time does not exist), negative if it is out of range or would move backwards. */
static int tm_settle(struct tm *tm, bool utc) {
        struct tm t;
        int cmp = 0;

        /* Also what ends the search for dates that never come, like Feb 30. */
        if (tm->tm_year + 1900 > YEAR_MAX)
                return -ERANGE;

        t = *tm;
        if (tm_to_time(&t, utc) < 0)
                return -ERANGE;

        /* Compare from the year down. Whatever is below the first field that changed is stale: reset the
         * next smaller field, as the value found for it was meant for a different larger field. */
        if (t.tm_year != tm->tm_year) {
                cmp = t.tm_year < tm->tm_year ? -1 : 1;
                t.tm_mon = 0;
        } else if (t.tm_mon != tm->tm_mon) {
                cmp = t.tm_mon < tm->tm_mon ? -1 : 1;
                t.tm_mday = 1;
        } else if (t.tm_mday != tm->tm_mday) {
                cmp = t.tm_mday < tm->tm_mday ? -1 : 1;
                t.tm_hour = 0;
        } else if (t.tm_hour != tm->tm_hour) {
                cmp = t.tm_hour < tm->tm_hour ? -1 : 1;
                t.tm_min = 0;
        } else if (t.tm_min != tm->tm_min) {
                cmp = t.tm_min < tm->tm_min ? -1 : 1;
                t.tm_sec = 0;
        } else if (t.tm_sec != tm->tm_sec)
                cmp = t.tm_sec < tm->tm_sec ? -1 : 1;

        if (cmp < 0)
                return -EDEADLK;
        if (cmp > 0)
                *tm = t;
        return cmp == 0;
}

static bool weekday_matches(int weekdays, const struct tm *tm, bool utc) {
        struct tm t;

        if (weekdays < 0 || weekdays >= WEEKDAYS_ALL)
                return true;

        t = *tm;
        if (tm_to_time(&t, utc) < 0)
                return false;

        return weekdays & (1 << ((t.tm_wday + 6) % 7));
}

static void tm_reset_below(struct tm *tm, int *usec, CalendarField field) {
        if (field < CAL_MONTH)
                tm->tm_mon = 0;
        if (field < CAL_DAY)
                tm->tm_mday = 1;
        if (field < CAL_HOUR)
                tm->tm_hour = 0;
        if (field < CAL_MINUTE)
                tm->tm_min = 0;
        if (field < CAL_SECOND) {
                tm->tm_sec = 0;
                *usec = 0;
        }
}

static void tm_increment(struct tm *tm, int *usec, CalendarField field) {
        switch (field) {
        case CAL_YEAR:
                tm->tm_year++;
                break;
        case CAL_MONTH:
                tm->tm_mon++;
                break;
        case CAL_DAY:
                tm->tm_mday++;
                break;
        case CAL_HOUR:
                tm->tm_hour++;
                break;
        case CAL_MINUTE:
                tm->tm_min++;
                break;
        default:
                break;
        }
        tm_reset_below(tm, usec, field);
}

/* Applies the field's chain to tm: 1 if the field moved (smaller fields are then reset), 0 if it
 * matched, -ENOENT if it cannot match any more within the next larger field. */
static int tm_advance_field(const CalendarSpec *spec, CalendarField field, struct tm *tm, int *usec) {
        int v, r;

        switch (field) {
        case CAL_YEAR:
                v = tm->tm_year + 1900;
                r = chain_next_value(spec, field, tm, &v);
                tm->tm_year = v - 1900;
                break;
        case CAL_MONTH:
                v = tm->tm_mon + 1;
                r = chain_next_value(spec, field, tm, &v);
                tm->tm_mon = v - 1;
                break;
        case CAL_DAY:
                r = chain_next_value(spec, field, tm, &tm->tm_mday);
                break;
        case CAL_HOUR:
                r = chain_next_value(spec, field, tm, &tm->tm_hour);
                break;
        case CAL_MINUTE:
                r = chain_next_value(spec, field, tm, &tm->tm_min);
                break;
        default:
                v = tm->tm_sec * (int) USEC_PER_SEC + *usec;
                r = chain_next_value(spec, field, tm, &v);
                tm->tm_sec = v / (int) USEC_PER_SEC;
                *usec = v % (int) USEC_PER_SEC;
                return r;
        }

        if (r > 0)
                tm_reset_below(tm, usec, field);
        return r;
}

/* Whether a is before b, field by field. */
static bool tm_before(const struct tm *a, int a_usec, const struct tm *b, int b_usec) {
        const int x[] = { a->tm_year, a->tm_mon, a->tm_mday, a->tm_hour, a->tm_min, a->tm_sec, a_usec };
        const int y[] = { b->tm_year, b->tm_mon, b->tm_mday, b->tm_hour, b->tm_min, b->tm_sec, b_usec };

        for (size_t i = 0; i < ELEMENTSOF(x); i++)
                if (x[i] != y[i])
                        return x[i] < y[i];
        return false;
}

static int find_next(const CalendarSpec *spec, struct tm *tm, int *usec) {
        struct tm c = *tm;
        int u = *usec;
        bool keep_isdst = false;

        for (unsigned round = 0; round < SEARCH_ROUNDS_MAX; round++) {
                bool again = false;
                int r;

                (void) tm_to_time(&c, spec->utc);
                if (!keep_isdst)
                        c.tm_isdst = spec->dst;

                for (CalendarField f = 0; f < _CAL_FIELD_MAX && !again; f++) {
                        r = tm_advance_field(spec, f, &c, &u);

                        if (f == CAL_YEAR) {
                                /* Nothing larger to advance: done for good. */
                                if (r < 0)
                                        return r;
                                if (tm_settle(&c, spec->utc) <= 0)
                                        return -ENOENT;
                                continue;
                        }

                        if (r >= 0)
                                r = tm_settle(&c, spec->utc);
                        if (r < 0) {
                                tm_increment(&c, &u, f - 1);
                                again = true;
                        } else if (r == 0)
                                again = true; /* Renormalized: check all fields again. */
                        else if (f == CAL_DAY && !weekday_matches(spec->weekdays, &c, spec->utc)) {
                                tm_increment(&c, &u, CAL_DAY);
                                again = true;
                        }
                }

                if (again)
                        continue;

                /* mktime() may move a wall time that does not exist (skipped by a DST change) backwards,
                 * which can yield a match before the start. Then try again an hour later, from now on
                 * keeping the DST flag mktime() chose. */
                if (tm_before(&c, u, tm, *usec)) {
                        c.tm_hour++;
                        keep_isdst = true;
                        continue;
                }

                *tm = c;
                *usec = u;
                return 0;
        }

        return -EDEADLK;
}

/* In the current process' time zone (or UTC). */
static int next_usec_here(const CalendarSpec *spec, usec_t after, usec_t *ret) {
        struct tm tm;
        time_t t;
        int usec, r;

        if (after > USEC_FORMATTABLE_MAX)
                return -EINVAL;

        after++;
        t = (time_t) (after / USEC_PER_SEC);
        if (!(spec->utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)))
                return -EINVAL;
        usec = (int) (after % USEC_PER_SEC);

        r = find_next(spec, &tm, &usec);
        if (r < 0)
                return r;

        t = tm_to_time(&tm, spec->utc);
        if (t < 0)
                return -EINVAL;

        *ret = (usec_t) t * USEC_PER_SEC + (usec_t) usec;
        return 0;
}

static int next_usec_many_here(const CalendarSpec *spec, usec_t after, size_t n, usec_t *ret) {
        size_t i;

        for (i = 0; i < n; i++) {
                int r;

                r = next_usec_here(spec, i == 0 ? after : ret[i - 1], ret + i);
                if (r == -ENOENT)
                        break;
                if (r < 0)
                        return r;
        }

        return (int) MIN(i, (size_t) INT_MAX);
}

/* Evaluates an expression with an explicit zone as systemd does (with $TZ set to ":<zone>" and tzset()), but
 * in this process: $TZ is switched for the computation and restored before returning. systemd forks a child
 * for this; batchd did too, which made every evaluation cost a fork() and a wait inside the event loop (one
 * day of a minutely zone schedule took 32 s). The switch is only safe because nothing else can read the
 * environment or convert local time while it lasts: batchd and batchctl are single-threaded, and nothing
 * between the switch and the restore calls out of this file. A thread that formats local time (localtime_r(),
 * strftime() with %Z, mktime()) must never be added to a process that calls this; see docs/reliability.md,
 * "Calendar time zones". */
static int next_usec_many_in_zone(const CalendarSpec *spec, usec_t after, size_t n, usec_t *ret) {
        _cleanup_free_ char *tz = NULL, *saved = NULL;
        const char *old;
        int r;

        /* tzset(3): a leading ':' means a zoneinfo file. */
        if (asprintf(&tz, ":%s", spec->timezone) < 0) {
                tz = NULL;
                return -ENOMEM;
        }
        old = getenv("TZ");
        if (old) {
                saved = strdup(old);
                if (!saved)
                        return -ENOMEM;
        }

        if (setenv("TZ", tz, 1) < 0)
                return -errno;
        tzset();

        r = next_usec_many_here(spec, after, n, ret);

        /* glibc's setenv() keeps the strings it has seen, so switching back and forth does not grow the
         * environment. Restoring cannot fail for lack of memory then, but say so if it ever does. */
        if (saved ? setenv("TZ", saved, 1) < 0 : unsetenv("TZ") < 0)
                r = -errno;
        tzset();
        return r;
}

int calendar_spec_next_usec_many(const CalendarSpec *c, usec_t after, size_t n, usec_t *ret) {
        if (!c || (n > 0 && !ret))
                return -EINVAL;
        if (n == 0)
                return 0;

        if (!isempty(c->timezone))
                return next_usec_many_in_zone(c, after, n, ret);
        return next_usec_many_here(c, after, n, ret);
}

int calendar_spec_next_usec(const CalendarSpec *c, usec_t after, usec_t *ret) {
        usec_t next;
        int r;

        if (!c)
                return -EINVAL;

        if (isempty(c->timezone))
                r = next_usec_here(c, after, &next);
        else {
                r = next_usec_many_in_zone(c, after, 1, &next);
                if (r == 0)
                        r = -ENOENT;
        }
        if (r < 0)
                return r;

        if (ret)
                *ret = next;
        return 0;
}

/* ---- systemd-analyze calendar output ---- */

#define ANALYZE_TIMESTAMP_MAX 64

static char *format_analyze_timestamp(usec_t t, bool utc, char buf[static ANALYZE_TIMESTAMP_MAX]) {
        static const char *const wday[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        int n;

        if (!(utc ? gmtime_r(&sec, &tm) : localtime_r(&sec, &tm)))
                return NULL;

        n = snprintf(buf, ANALYZE_TIMESTAMP_MAX, "%s %04d-%02d-%02d %02d:%02d:%02d",
                     wday[tm.tm_wday], tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (n < 0 || n >= ANALYZE_TIMESTAMP_MAX)
                return NULL;

        /* gmtime_r() calls it "GMT", systemd prints "UTC". */
        if (utc)
                snprintf(buf + n, ANALYZE_TIMESTAMP_MAX - (size_t) n, " UTC");
        else if (!isempty(tm.tm_zone))
                snprintf(buf + n, ANALYZE_TIMESTAMP_MAX - (size_t) n, " %s", tm.tm_zone);
        return buf;
}

/* systemd's format_timestamp_relative(): two units at most, coarser the further away. */
static void format_analyze_relative(usec_t t, usec_t now, char buf[static ANALYZE_TIMESTAMP_MAX]) {
        timestamp_format_relative(t, now, buf);
}

typedef struct AnalyzeRow {
        char *field;
        char *value;
} AnalyzeRow;

static void analyze_rows_free(AnalyzeRow *rows, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(rows[i].field);
                free(rows[i].value);
        }
        free(rows);
}

static int analyze_row_add(AnalyzeRow **rows, size_t *n, const char *field, const char *value) {
        AnalyzeRow *a;

        a = reallocarray(*rows, *n + 1, sizeof(AnalyzeRow));
        if (!a)
                return -ENOMEM;
        *rows = a;

        a[*n] = (AnalyzeRow) {
                .field = strdup(field),
                .value = strdup(value),
        };
        (*n)++;
        if (!a[*n - 1].field || !a[*n - 1].value)
                return -ENOMEM;
        return 0;
}

int calendar_spec_print_analyze(
                FILE *f,
                const char *expr,
                usec_t base,
                usec_t now,
                unsigned iterations,
                char **ret_error) {

        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        int r;

        if (!f || !expr)
                return -EINVAL;

        r = calendar_spec_from_string(expr, &spec, ret_error);
        if (r < 0)
                return r;

        return calendar_spec_print_elapses(f, spec, expr, base, now, iterations, ret_error);
}

int calendar_spec_print_elapses(
                FILE *f,
                const CalendarSpec *spec,
                const char *expr,
                usec_t base,
                usec_t now,
                unsigned iterations,
                char **ret_error) {

        _cleanup_free_ usec_t *next = NULL;
        _cleanup_free_ char *normalized = NULL;
        AnalyzeRow *rows = NULL;
        size_t n_rows = 0, width = 0, value_width = 0;
        bool in_utc;
        int n_next, r;

        if (!f || !spec || !expr)
                return -EINVAL;

        r = calendar_spec_to_string(spec, &normalized);
        if (r < 0)
                return r;

        if (iterations > 0) {
                next = calloc(iterations, sizeof(usec_t));
                if (!next)
                        return -ENOMEM;
        }
        n_next = calendar_spec_next_usec_many(spec, base, iterations, next);
        if (n_next < 0) {
                if (ret_error && asprintf(ret_error, "Failed to determine next elapse for '%s': %s",
                                          expr, strerror(-n_next)) < 0)
                        *ret_error = NULL;
                return n_next;
        }

        tzset();
        in_utc = timezone == 0 && daylight == 0;

        if (!streq(normalized, expr))
                r = analyze_row_add(&rows, &n_rows, "Original form", expr);
        if (r >= 0)
                r = analyze_row_add(&rows, &n_rows, "Normalized form", normalized);
        if (r >= 0 && iterations > 0 && n_next == 0)
                r = analyze_row_add(&rows, &n_rows, "Next elapse", "never");

        for (int i = 0; r >= 0 && i < n_next; i++) {
                char label[32], buf[ANALYZE_TIMESTAMP_MAX];

                if (i == 0)
                        snprintf(label, sizeof(label), "Next elapse");
                else
                        snprintf(label, sizeof(label), "Iter. #%d", i + 1);

                r = analyze_row_add(&rows, &n_rows, label, strempty(format_analyze_timestamp(next[i], false, buf)));
                if (r >= 0 && !in_utc)
                        r = analyze_row_add(&rows, &n_rows, "(in UTC)",
                                            strempty(format_analyze_timestamp(next[i], true, buf)));
                if (r >= 0) {
                        format_analyze_relative(next[i], now, buf);
                        r = analyze_row_add(&rows, &n_rows, "From now", buf);
                }
        }
        if (r < 0) {
                analyze_rows_free(rows, n_rows);
                return r;
        }

        /* systemd's vertical table: field names right-aligned, with a colon, in one column. A value
         * narrower than the widest one is padded and then loses trailing whitespace (an expression may
         * end in spaces); the widest is printed as it is. */
        for (size_t i = 0; i < n_rows; i++) {
                width = MAX(width, strlen(rows[i].field) + 1);
                value_width = MAX(value_width, strlen(rows[i].value));
        }
        for (size_t i = 0; i < n_rows; i++) {
                size_t l = strlen(rows[i].value);

                if (l < value_width)
                        while (l > 0 && isspace((unsigned char) rows[i].value[l - 1]))
                                l--;
                fprintf(f, "%*s: %.*s\n", (int) width - 1, rows[i].field, (int) l, rows[i].value);
        }

        analyze_rows_free(rows, n_rows);
        return 0;
}
