/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <strings.h>

#include <openssl/evp.h>

#include "job-parameters.h"

/* Longest piece of user input quoted in an error message, so one bad 2500-byte value does not produce a
 * 2500-byte message. */
#define SHOWN_MAX 64
#define SHOWN_BUF (SHOWN_MAX + 4)

static const char *const job_parameter_type_table[_JOB_PARAMETER_TYPE_MAX] = {
        [JOB_PARAMETER_STRING]   = "string",
        [JOB_PARAMETER_LONG]     = "long",
        [JOB_PARAMETER_DOUBLE]   = "double",
        [JOB_PARAMETER_DATE]     = "date",
        [JOB_PARAMETER_DATETIME] = "datetime",
};

static const char *const job_parameter_java_table[_JOB_PARAMETER_TYPE_MAX] = {
        [JOB_PARAMETER_STRING]   = "java.lang.String",
        [JOB_PARAMETER_LONG]     = "java.lang.Long",
        [JOB_PARAMETER_DOUBLE]   = "java.lang.Double",
        [JOB_PARAMETER_DATE]     = "java.time.LocalDate",
        [JOB_PARAMETER_DATETIME] = "java.time.LocalDateTime",
};

const char *job_parameter_type_to_string(JobParameterType t) {
        if (t < 0 || t >= _JOB_PARAMETER_TYPE_MAX)
                return NULL;
        return job_parameter_type_table[t];
}

JobParameterType job_parameter_type_from_string(const char *s) {
        if (!s)
                return _JOB_PARAMETER_TYPE_INVALID;
        for (JobParameterType t = 0; t < _JOB_PARAMETER_TYPE_MAX; t++)
                if (streq(job_parameter_type_table[t], s))
                        return t;
        return _JOB_PARAMETER_TYPE_INVALID;
}

const char *job_parameter_type_to_java(JobParameterType t) {
        if (t < 0 || t >= _JOB_PARAMETER_TYPE_MAX)
                return NULL;
        return job_parameter_java_table[t];
}

JobParameterType job_parameter_type_from_java(const char *s) {
        if (!s)
                return _JOB_PARAMETER_TYPE_INVALID;
        for (JobParameterType t = 0; t < _JOB_PARAMETER_TYPE_MAX; t++)
                if (streq(job_parameter_java_table[t], s))
                        return t;
        return _JOB_PARAMETER_TYPE_INVALID;
}

bool utf8_is_valid(const char *s) {
        const uint8_t *p = (const uint8_t *) s;

        if (!s)
                return false;

        while (*p) {
                uint32_t cp, min;
                size_t len;

                if (*p < 0x80) {
                        p++;
                        continue;
                }

                if ((*p & 0xE0) == 0xC0) {
                        len = 2;
                        cp = *p & 0x1F;
                        min = 0x80;
                } else if ((*p & 0xF0) == 0xE0) {
                        len = 3;
                        cp = *p & 0x0F;
                        min = 0x800;
                } else if ((*p & 0xF8) == 0xF0) {
                        len = 4;
                        cp = *p & 0x07;
                        min = 0x10000;
                } else
                        return false;

                /* A NUL terminator is not a continuation byte, so this never reads past the string. */
                for (size_t i = 1; i < len; i++) {
                        if ((p[i] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3F);
                }

                /* Overlong forms would let two byte sequences mean the same name; surrogates and anything
                 * above U+10FFFF are not characters at all. */
                if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;

                p += len;
        }

        return true;
}

/* Decodes one code point of a string already known to be valid UTF-8. */
static uint32_t utf8_next(const char **s) {
        const uint8_t *p = (const uint8_t *) *s;
        uint32_t cp;
        size_t len;

        if (*p < 0x80) {
                cp = *p;
                len = 1;
        } else if ((*p & 0xE0) == 0xC0) {
                cp = *p & 0x1F;
                len = 2;
        } else if ((*p & 0xF0) == 0xE0) {
                cp = *p & 0x0F;
                len = 3;
        } else {
                cp = *p & 0x07;
                len = 4;
        }
        for (size_t i = 1; i < len; i++)
                cp = (cp << 6) | (p[i] & 0x3F);

        *s += len;
        return cp;
}

/* Java's String.compareTo() orders by UTF-16 code units. That equals code point order except that
 * supplementary characters (surrogate pairs, 0xD800…) sort before U+E000…U+FFFF. Mapping those BMP
 * characters above U+10FFFF gives the same order while comparing code points. */
static uint32_t java_order_key(uint32_t cp) {
        return cp >= 0xE000 && cp <= 0xFFFF ? cp + 0x110000 : cp;
}

static int java_string_compare(const char *a, const char *b) {
        while (*a && *b) {
                uint32_t x = java_order_key(utf8_next(&a)), y = java_order_key(utf8_next(&b));

                if (x != y)
                        return x < y ? -1 : 1;
        }
        return *a ? 1 : *b ? -1 : 0;
}

/* Returns s, or s cut at a character boundary with "..." appended in buf, for quoting in messages. */
static const char *shown(const char *s, char buf[static SHOWN_BUF]) {
        size_t n = strnlen(s, SHOWN_MAX + 1);

        if (n <= SHOWN_MAX)
                return s;

        n = SHOWN_MAX;
        while (n > 0 && ((uint8_t) s[n] & 0xC0) == 0x80)
                n--;
        memcpy(buf, s, n);
        memcpy(buf + n, "...", 4);
        return buf;
}

/* Stores a message in *ret_error when the caller asked for one. Returns -EINVAL, or -ENOMEM when the message
 * itself cannot be allocated. */
_printf_(2, 3)
static int set_error(char **ret_error, const char *format, ...) {
        va_list ap;
        char *m;
        int r;

        if (!ret_error)
                return -EINVAL;

        va_start(ap, format);
        r = vasprintf(&m, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        *ret_error = m;
        return -EINVAL;
}

static int invalid_value(char **ret_error, const char *name, JobParameterType t, const char *text,
                         const char *reason) {
        char b1[SHOWN_BUF], b2[SHOWN_BUF];

        if (name)
                return set_error(ret_error, "Invalid value '%s' for parameter '%s' of type %s: %s.",
                                 shown(text, b1), shown(name, b2), job_parameter_type_to_string(t), reason);
        return set_error(ret_error, "Invalid value '%s' for type %s: %s.",
                         shown(text, b1), job_parameter_type_to_string(t), reason);
}

static int parse_long(const char *s, int64_t *ret) {
        const char *p = s;
        bool negative = false;
        uint64_t v = 0, limit;

        /* Long.parseLong(): optional sign, decimal digits only, no whitespace. */
        if (*p == '+' || *p == '-')
                negative = *p++ == '-';
        if (*p == '\0')
                return -EINVAL;

        limit = negative ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
        for (; *p; p++) {
                unsigned d;

                if (*p < '0' || *p > '9')
                        return -EINVAL;
                d = (unsigned) (*p - '0');
                if (v > (limit - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }

        if (negative)
                *ret = v == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) v;
        else
                *ret = (int64_t) v;
        return 0;
}

static void c_localep(locale_t *l) {
        if (*l != (locale_t) 0)
                freelocale(*l);
}

/* strtod() in the C locale: job parameters must not change meaning with the caller's LC_NUMERIC. */
static int strtod_c(const char *s, double *ret, char **ret_end) {
        _cleanup_(c_localep) locale_t l = newlocale(LC_ALL_MASK, "C", (locale_t) 0);

        if (l == (locale_t) 0)
                return -ENOMEM;

        errno = 0;
        *ret = strtod_l(s, ret_end, l);
        return errno == ERANGE ? -ERANGE : 0;
}

static bool double_syntax_is_valid(const char *s) {
        const char *p = s;
        size_t digits = 0;

        /* strtod() would also take leading whitespace, hexadecimal and "nan(...)"; none of these is a
         * number someone means to pass as a decimal parameter. */
        if (*p == '+' || *p == '-')
                p++;
        if (strcasecmp(p, "nan") == 0 || strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0)
                return true;

        for (; *p >= '0' && *p <= '9'; p++)
                digits++;
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++)
                        digits++;
        if (digits == 0)
                return false;

        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '+' || *p == '-')
                        p++;
                if (*p < '0' || *p > '9')
                        return false;
                while (*p >= '0' && *p <= '9')
                        p++;
        }

        return *p == '\0';
}

static int parse_double(const char *s, double *ret) {
        char *end;
        double d;
        int r;

        if (!double_syntax_is_valid(s))
                return -EINVAL;

        r = strtod_c(s, &d, &end);
        if (r == -ENOMEM)
                return r;
        if (*end != '\0')
                return -EINVAL;
        /* Underflow gives 0 or a subnormal, as Double.parseDouble() does; overflow is refused rather than
         * silently turned into Infinity. */
        if (r == -ERANGE && isinf(d))
                return -ERANGE;

        *ret = d;
        return 0;
}

/* A decimal d[0].d[1]…d[n-1] × 10^exp10 with 1 <= n <= 17. */
typedef struct Decimal {
        char digits[18];
        size_t n;
        int exp10;
} Decimal;

/* The correctly rounded n-digit decimal of the positive finite value d. */
static void decimal_round(double d, size_t n, Decimal *ret) {
        char buf[64];
        const char *p;
        size_t k = 0;

        /* glibc prints %e exactly rounded. Only the digits and the exponent are read, so a locale's decimal
         * separator does not matter. */
        (void) snprintf(buf, sizeof(buf), "%.*e", (int) n - 1, d);
        for (p = buf; *p && *p != 'e'; p++)
                if (*p >= '0' && *p <= '9' && k < n)
                        ret->digits[k++] = *p;
        ret->digits[k] = '\0';
        ret->n = k;
        ret->exp10 = *p == 'e' ? atoi(p + 1) : 0;
}

static int decimal_to_double(const Decimal *dec, double *ret) {
        char buf[64];
        char *end;
        int r;

        (void) snprintf(buf, sizeof(buf), "%c.%se%d", dec->digits[0], dec->digits + 1, dec->exp10);
        r = strtod_c(buf, ret, &end);
        return r == -ENOMEM ? r : 0;
}

/* Moves dec by one unit in its last digit, keeping the digit count. */
static void decimal_step(Decimal *dec, bool up) {
        size_t i = dec->n;

        if (up) {
                while (i > 0 && dec->digits[i - 1] == '9')
                        dec->digits[--i] = '0';
                if (i > 0)
                        dec->digits[i - 1]++;
                else {
                        dec->digits[0] = '1';
                        dec->exp10++;
                }
        } else {
                while (i > 0 && dec->digits[i - 1] == '0')
                        dec->digits[--i] = '9';
                dec->digits[i - 1]--;
                if (dec->digits[0] == '0') {
                        /* 1000 → 0999 → 9999 one decade lower: still n digits. */
                        memset(dec->digits, '9', dec->n);
                        dec->exp10--;
                }
        }
}

/* The n-digit decimal closest to d that still reads back as d. Returns 1 when there is one, 0 when not. */
static int decimal_best(double d, size_t n, Decimal *ret) {
        Decimal dec;
        double back;
        int r;

        decimal_round(d, n, &dec);
        r = decimal_to_double(&dec, &back);
        if (r < 0)
                return r;
        if (back != d) {
                /* Just above a power of two the spacing of doubles halves, so the nearest decimal can fall
                 * outside the narrow side of d's rounding interval while its neighbour on the wide side is
                 * inside. No other n-digit decimal can be closer. */
                decimal_step(&dec, back < d);
                r = decimal_to_double(&dec, &back);
                if (r < 0)
                        return r;
                if (back != d)
                        return 0;
        }

        *ret = dec;
        return 1;
}

int java_double_to_string(double d, char **ret) {
        Decimal dec;
        char buf[64], *s;
        size_t k = 0;
        int r;

        if (isnan(d))
                s = strdup("NaN");
        else if (isinf(d))
                s = strdup(d < 0 ? "-Infinity" : "Infinity");
        else if (d == 0)
                s = strdup(signbit(d) ? "-0.0" : "0.0");
        else {
                size_t n;

                /* Java 19+ Double.toString(): the shortest decimal that rounds to d, the closest one among
                 * equally short ones; when one digit would do, the closest of up to two digits, which is
                 * how Double.MIN_VALUE becomes "4.9E-324" and not "5.0E-324". */
                for (n = 1; n <= 17; n++) {
                        r = decimal_best(fabs(d), n, &dec);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                break;
                }
                if (n > 17)
                        return -EINVAL; /* 17 digits always round-trip; unreachable */
                if (n == 1) {
                        r = decimal_best(fabs(d), 2, &dec);
                        if (r < 0)
                                return r;
                }
                while (dec.n > 1 && dec.digits[dec.n - 1] == '0')
                        dec.digits[--dec.n] = '\0';

                if (d < 0)
                        buf[k++] = '-';

                if (dec.exp10 >= -3 && dec.exp10 < 7) {
                        if (dec.exp10 >= 0) {
                                for (int i = 0; i <= dec.exp10; i++)
                                        buf[k++] = (size_t) i < dec.n ? dec.digits[i] : '0';
                                buf[k++] = '.';
                                if ((size_t) dec.exp10 + 1 < dec.n)
                                        for (size_t i = (size_t) dec.exp10 + 1; i < dec.n; i++)
                                                buf[k++] = dec.digits[i];
                                else
                                        buf[k++] = '0';
                        } else {
                                buf[k++] = '0';
                                buf[k++] = '.';
                                for (int i = -1; i > dec.exp10; i--)
                                        buf[k++] = '0';
                                for (size_t i = 0; i < dec.n; i++)
                                        buf[k++] = dec.digits[i];
                        }
                        buf[k] = '\0';
                } else
                        (void) snprintf(buf + k, sizeof(buf) - k, "%c.%sE%d", dec.digits[0],
                                        dec.n > 1 ? dec.digits + 1 : "0", dec.exp10);

                s = strdup(buf);
        }
        if (!s)
                return -ENOMEM;

        *ret = s;
        return 0;
}

static bool is_leap_year(int y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m) {
        static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

        return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

/* Reads exactly n decimal digits. */
static bool read_digits(const char **p, size_t n, int *ret) {
        int v = 0;

        for (size_t i = 0; i < n; i++) {
                if ((*p)[i] < '0' || (*p)[i] > '9')
                        return false;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

/* "YYYY-MM-DD". Returns -EINVAL for the wrong shape, -ERANGE for a date that does not exist. */
static int parse_date(const char **p, int *ret_y, int *ret_m, int *ret_d) {
        int y, m, d;

        if (!read_digits(p, 4, &y) || *(*p)++ != '-' ||
            !read_digits(p, 2, &m) || *(*p)++ != '-' ||
            !read_digits(p, 2, &d))
                return -EINVAL;
        if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
                return -ERANGE;

        *ret_y = y;
        *ret_m = m;
        *ret_d = d;
        return 0;
}

static int canonicalize_date(const char *text, char **ret) {
        const char *p = text;
        int y, m, d, r;

        r = parse_date(&p, &y, &m, &d);
        if (r < 0)
                return r;
        if (*p != '\0')
                return -EINVAL;

        return asprintf(ret, "%04d-%02d-%02d", y, m, d) < 0 ? -ENOMEM : 0;
}

static int canonicalize_datetime(const char *text, char **ret, const char **ret_reason) {
        const char *p = text;
        int y, mo, d, h, mi, s = 0, nanos = 0, r;
        char frac[16] = "";

        r = parse_date(&p, &y, &mo, &d);
        if (r == -ERANGE) {
                *ret_reason = "no such date";
                return r;
        }
        /* ISO_LOCAL_DATE_TIME parses case-insensitively; a space is what SQL and people tend to write. */
        if (r < 0 || (*p != 'T' && *p != 't' && *p != ' '))
                goto shape;
        p++;
        if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi))
                goto shape;
        if (*p == ':') {
                p++;
                if (!read_digits(&p, 2, &s))
                        goto shape;
                if (*p == '.') {
                        int digits = 0;

                        for (p++; *p >= '0' && *p <= '9' && digits < 9; p++, digits++)
                                nanos = nanos * 10 + (*p - '0');
                        if (digits == 0)
                                goto shape;
                        for (; digits < 9; digits++)
                                nanos *= 10;
                }
        }
        if (*p != '\0')
                goto shape;
        if (h > 23 || mi > 59 || s > 59) {
                *ret_reason = "no such time of day";
                return -ERANGE;
        }

        /* LocalTime.toString(): seconds only when not zero, the fraction in groups of three digits. */
        if (nanos > 0) {
                if (nanos % 1000000 == 0)
                        (void) snprintf(frac, sizeof(frac), ".%03d", nanos / 1000000);
                else if (nanos % 1000 == 0)
                        (void) snprintf(frac, sizeof(frac), ".%06d", nanos / 1000);
                else
                        (void) snprintf(frac, sizeof(frac), ".%09d", nanos);
        }
        if (s > 0 || nanos > 0)
                r = asprintf(ret, "%04d-%02d-%02dT%02d:%02d:%02d%s", y, mo, d, h, mi, s, frac);
        else
                r = asprintf(ret, "%04d-%02d-%02dT%02d:%02d", y, mo, d, h, mi);
        return r < 0 ? -ENOMEM : 0;

shape:
        *ret_reason = "expected YYYY-MM-DDTHH:MM[:SS[.fraction]]";
        return -EINVAL;
}

/* job_parameter_canonicalize() with the parameter name for messages (NULL when there is none) and the typed
 * values JobParameter keeps besides the text. */
static int canonicalize_full(JobParameterType t, const char *name, const char *text, char **ret_value,
                             int64_t *ret_long, double *ret_double, char **ret_error) {
        _cleanup_free_ char *v = NULL;
        const char *reason = NULL;
        int64_t l = 0;
        double d = 0;
        int r;

        if (t < 0 || t >= _JOB_PARAMETER_TYPE_MAX)
                return set_error(ret_error, "Unknown parameter type.");
        if (!text)
                return -EINVAL;

        /* Checked first for every type, so that no message quotes broken bytes. */
        if (!utf8_is_valid(text)) {
                char b[SHOWN_BUF];

                if (name)
                        return set_error(ret_error, "Parameter '%s' value is not valid UTF-8.", shown(name, b));
                return set_error(ret_error, "Value is not valid UTF-8.");
        }

        switch (t) {

        case JOB_PARAMETER_STRING:
                v = strdup(text);
                if (!v)
                        return -ENOMEM;
                break;

        case JOB_PARAMETER_LONG:
                r = parse_long(text, &l);
                if (r == -ERANGE)
                        return invalid_value(ret_error, name, t, text, "out of range");
                if (r < 0)
                        return invalid_value(ret_error, name, t, text, "not a number");
                if (asprintf(&v, "%" PRId64, l) < 0)
                        return -ENOMEM;
                break;

        case JOB_PARAMETER_DOUBLE:
                r = parse_double(text, &d);
                if (r == -ENOMEM)
                        return r;
                if (r == -ERANGE)
                        return invalid_value(ret_error, name, t, text, "out of range");
                if (r < 0)
                        return invalid_value(ret_error, name, t, text, "not a number");
                r = java_double_to_string(d, &v);
                if (r < 0)
                        return r;
                break;

        case JOB_PARAMETER_DATE:
                r = canonicalize_date(text, &v);
                if (r == -ENOMEM)
                        return r;
                if (r == -ERANGE)
                        return invalid_value(ret_error, name, t, text, "no such date");
                if (r < 0)
                        return invalid_value(ret_error, name, t, text, "expected YYYY-MM-DD");
                break;

        case JOB_PARAMETER_DATETIME:
                r = canonicalize_datetime(text, &v, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return invalid_value(ret_error, name, t, text, reason);
                break;

        default:
                return -EINVAL;
        }

        if (ret_long)
                *ret_long = l;
        if (ret_double)
                *ret_double = d;
        *ret_value = TAKE_PTR(v);
        return 0;
}

int job_parameter_canonicalize(JobParameterType t, const char *text, char **ret_value, char **ret_error) {
        if (!ret_value)
                return -EINVAL;
        return canonicalize_full(t, NULL, text, ret_value, NULL, NULL, ret_error);
}

static int validate_name(const char *name, char **ret_error) {
        char b[SHOWN_BUF];
        const char *bad;

        if (isempty(name))
                return set_error(ret_error, "Parameter name must not be empty.");
        if (!utf8_is_valid(name))
                return set_error(ret_error, "Parameter name is not valid UTF-8.");
        if (strlen(name) > JOB_PARAMETER_NAME_MAX)
                return set_error(ret_error, "Parameter name '%s' is longer than %d bytes.",
                                 shown(name, b), JOB_PARAMETER_NAME_MAX);

        /* These could not be given back on a command line: '=' ends the name, "(type)" follows it, a
         * leading '-' marks it non-identifying. */
        for (const char *p = name; *p; p++)
                if ((uint8_t) *p < 0x20 || *p == 0x7F)
                        return set_error(ret_error, "Parameter name must not contain control characters.");
        bad = strpbrk(name, "=()");
        if (bad)
                return set_error(ret_error, "Parameter name '%s' must not contain '%c'.", shown(name, b), *bad);
        if (name[0] == '-')
                return set_error(ret_error, "Parameter name '%s' must not start with '-'.", shown(name, b));

        return 0;
}

static void job_parameter_done(JobParameter *p) {
        p->name = mfree(p->name);
        p->value = mfree(p->value);
}

void job_parameters_done(JobParameters *p) {
        if (!p)
                return;

        for (size_t i = 0; i < p->n; i++)
                job_parameter_done(p->items + i);
        free(p->items);
        *p = JOB_PARAMETERS_NULL;
}

int job_parameters_copy(const JobParameters *src, JobParameters *ret) {
        JobParameters copy = JOB_PARAMETERS_NULL;

        if (!src || !ret)
                return -EINVAL;

        if (src->n > 0) {
                copy.items = calloc(src->n, sizeof(JobParameter));
                if (!copy.items)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < src->n; i++) {
                JobParameter *to = copy.items + i;

                *to = src->items[i];
                to->name = strdup(src->items[i].name);
                to->value = strdup(src->items[i].value);
                copy.n++;
                if (!to->name || !to->value) {
                        job_parameters_done(&copy);
                        return -ENOMEM;
                }
        }

        *ret = copy;
        return 0;
}

static JobParameter *find(const JobParameters *p, const char *name) {
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->items[i].name, name))
                        return p->items + i;
        return NULL;
}

const JobParameter *job_parameters_get(const JobParameters *p, const char *name) {
        if (!p || !name)
                return NULL;
        return find(p, name);
}

bool job_parameters_has_identifying(const JobParameters *p) {
        if (!p)
                return false;
        for (size_t i = 0; i < p->n; i++)
                if (p->items[i].identifying)
                        return true;
        return false;
}

int job_parameters_add(JobParameters *p, const char *name, JobParameterType t, const char *value,
                       bool identifying, char **ret_error) {
        _cleanup_free_ char *n = NULL, *v = NULL;
        JobParameter *existing, *items;
        int64_t l;
        double d;
        int r;

        if (!p || !value)
                return -EINVAL;

        r = validate_name(name, ret_error);
        if (r < 0)
                return r;

        r = canonicalize_full(t, name, value, &v, &l, &d, ret_error);
        if (r < 0)
                return r;

        if (strlen(v) > JOB_PARAMETER_VALUE_MAX) {
                char b[SHOWN_BUF];

                return set_error(ret_error, "Parameter '%s' value is longer than %d bytes.",
                                 shown(name, b), JOB_PARAMETER_VALUE_MAX);
        }

        existing = find(p, name);
        if (existing) {
                free(existing->value);
                existing->value = TAKE_PTR(v);
                existing->untyped = false;
                existing->type = t;
                existing->identifying = identifying;
                existing->long_value = l;
                existing->double_value = d;
                return 0;
        }

        n = strdup(name);
        if (!n)
                return -ENOMEM;

        items = reallocarray(p->items, p->n + 1, sizeof(JobParameter));
        if (!items)
                return -ENOMEM;
        p->items = items;

        p->items[p->n++] = (JobParameter) {
                .name = TAKE_PTR(n),
                .type = t,
                .identifying = identifying,
                .value = TAKE_PTR(v),
                .long_value = l,
                .double_value = d,
        };
        return 0;
}

/* Finds the Spring Batch 5 suffix ",<java class>" or ",<java class>,true|false" at the end of value. Returns
 * the length of the value before it, or -ENOENT when value does not end like that. */
static ssize_t sb5_suffix(const char *value, JobParameterType *ret_type, int *ret_identifying) {
        static const struct {
                const char *suffix;
                int identifying;
        } flags[] = {
                { "",       -1    },
                { ",true",  true  },
                { ",false", false },
        };
        size_t len = strlen(value);

        for (size_t f = 0; f < ELEMENTSOF(flags); f++) {
                size_t fl = strlen(flags[f].suffix);

                if (len < fl || !streq(value + len - fl, flags[f].suffix))
                        continue;

                for (JobParameterType t = 0; t < _JOB_PARAMETER_TYPE_MAX; t++) {
                        const char *java = job_parameter_java_table[t];
                        size_t jl = strlen(java), rest = len - fl;

                        if (rest < jl + 1 || value[rest - jl - 1] != ',' ||
                            !strneq(value + rest - jl, java, jl))
                                continue;

                        if (ret_type)
                                *ret_type = t;
                        if (ret_identifying)
                                *ret_identifying = flags[f].identifying;
                        return (ssize_t) (rest - jl - 1);
                }
        }

        return -ENOENT;
}

int job_parameters_parse_argument(JobParameters *p, const char *arg, char **ret_error) {
        _cleanup_free_ char *name = NULL, *value = NULL;
        JobParameterType t = JOB_PARAMETER_STRING;
        const char *eq, *key, *paren;
        bool identifying = true, untyped = false;
        size_t key_len;
        char b[SHOWN_BUF];
        int r;

        if (!p || !arg)
                return -EINVAL;

        eq = strchr(arg, '=');
        if (!eq)
                return set_error(ret_error, "Job parameter '%s' is not of the form name=value.", shown(arg, b));

        key = arg;
        key_len = (size_t) (eq - arg);
        if (key_len > 0 && key[0] == '-') {
                identifying = false;
                key++;
                key_len--;
        }

        /* Names cannot contain '(', so the first one starts the Spring Batch 4 type. */
        paren = memchr(key, '(', key_len);
        if (paren) {
                _cleanup_free_ char *type = NULL;

                if (key[key_len - 1] != ')')
                        return set_error(ret_error, "Job parameter '%s' has no ')' after its type.",
                                         shown(arg, b));

                type = strndup(paren + 1, (size_t) (key + key_len - 1 - paren - 1));
                if (!type)
                        return -ENOMEM;
                t = job_parameter_type_from_string(type);
                if (t < 0) {
                        char b2[SHOWN_BUF];

                        return set_error(ret_error,
                                         "Unknown type '%s' in job parameter '%s'; known types are string, long, double, date and datetime.",
                                         shown(type, b), shown(arg, b2));
                }

                name = strndup(key, (size_t) (paren - key));
                value = strdup(eq + 1);
        } else {
                int sb5_identifying = -1;
                ssize_t l;

                name = strndup(key, key_len);
                l = sb5_suffix(eq + 1, &t, &sb5_identifying);
                if (l >= 0) {
                        if (!identifying && sb5_identifying == true)
                                return set_error(ret_error,
                                                 "Job parameter '%s' is marked both non-identifying ('-') and identifying (',true').",
                                                 shown(arg, b));
                        if (sb5_identifying == false)
                                identifying = false;
                        value = strndup(eq + 1, (size_t) l);
                } else {
                        value = strdup(eq + 1);
                        untyped = true;
                }
        }
        if (!name || !value)
                return -ENOMEM;

        r = job_parameters_add(p, name, t, value, identifying, ret_error);
        if (r < 0)
                return r;
        find(p, name)->untyped = untyped;
        return 0;
}

int job_parameter_apply_declared_type(JobParameter *p, JobParameterType declared, char **ret_error) {
        _cleanup_free_ char *v = NULL;
        char b[SHOWN_BUF];
        int64_t l;
        double d;
        int r;

        if (!p || declared < 0 || declared >= _JOB_PARAMETER_TYPE_MAX)
                return -EINVAL;

        if (!p->untyped) {
                if (p->type != declared)
                        return set_error(ret_error,
                                         "Parameter '%s' is declared by the job as a %s, but was given as a %s.",
                                         shown(p->name, b), job_parameter_type_to_string(declared),
                                         job_parameter_type_to_string(p->type));
                return 0;
        }

        /* Untyped values are kept as given (type string), so they can be parsed as the declared type now. */
        r = canonicalize_full(declared, p->name, p->value, &v, &l, &d, ret_error);
        if (r < 0)
                return r;
        if (strlen(v) > JOB_PARAMETER_VALUE_MAX)
                return set_error(ret_error, "Parameter '%s' value is longer than %d bytes.",
                                 shown(p->name, b), JOB_PARAMETER_VALUE_MAX);

        free(p->value);
        p->value = TAKE_PTR(v);
        p->type = declared;
        p->long_value = l;
        p->double_value = d;
        p->untyped = false;
        return 0;
}

int job_parameter_to_argument(const JobParameter *p, char **ret) {
        const char *type = NULL;

        if (!p || !ret || !p->name || !p->value)
                return -EINVAL;

        /* A string that happens to end like ",java.lang.Long" would be read back Spring Batch 5 style; an
         * explicit "(string)" keeps it a string. */
        if (p->type != JOB_PARAMETER_STRING || sb5_suffix(p->value, NULL, NULL) >= 0)
                type = job_parameter_type_to_string(p->type);
        if (!type && p->type != JOB_PARAMETER_STRING)
                return -EINVAL;

        if (asprintf(ret, "%s%s%s%s%s=%s",
                     p->identifying ? "" : "-", p->name,
                     type ? "(" : "", strempty(type), type ? ")" : "",
                     p->value) < 0)
                return -ENOMEM;
        return 0;
}

/* JobParameter.toString() of Spring Batch 5. */
static void fput_job_parameter(FILE *f, const JobParameter *p) {
        fprintf(f, "{value=%s, type=class %s, identifying=%s}",
                p->value, job_parameter_type_to_java(p->type), p->identifying ? "true" : "false");
}

static int memstream_finish(FILE **f, char **buf, char **ret) {
        int r;

        r = fclose(*f);
        *f = NULL;
        if (r != 0 || !*buf)
                return -ENOMEM;

        *ret = TAKE_PTR(*buf);
        return 0;
}

static int compare_by_name(const void *a, const void *b) {
        const JobParameter *const *x = a, *const *y = b;

        return java_string_compare((*x)->name, (*y)->name);
}

int job_parameters_job_key(const JobParameters *p, char ret[static 33]) {
        _cleanup_free_ const JobParameter **sorted = NULL;
        _cleanup_free_ char *buf = NULL, *s = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        size_t n = 0, sz = 0;
        EVP_MD *md5;
        int r;

        if (!p)
                return -EINVAL;

        if (p->n > 0) {
                sorted = calloc(p->n, sizeof(JobParameter *));
                if (!sorted)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < p->n; i++)
                if (p->items[i].identifying)
                        sorted[n++] = p->items + i;
        if (n > 0)
                qsort(sorted, n, sizeof(JobParameter *), compare_by_name);

        /* DefaultJobKeyGenerator: "name=" + JobParameter.toString() + ";" per parameter. */
        f = open_memstream(&buf, &sz);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "%s=", sorted[i]->name);
                fput_job_parameter(f, sorted[i]);
                fputc(';', f);
        }
        r = memstream_finish(&f, &buf, &s);
        if (r < 0)
                return r;

        /* MD5 is what Spring stores in JOB_KEY; it names an instance and protects nothing. It is missing
         * when OpenSSL runs in FIPS mode. */
        md5 = EVP_MD_fetch(NULL, "MD5", NULL);
        if (!md5)
                return -EOPNOTSUPP;
        r = EVP_Digest(s, strlen(s), md, &md_len, md5, NULL);
        EVP_MD_free(md5);
        if (r != 1 || md_len != 16)
                return -EIO;

        for (unsigned i = 0; i < md_len; i++) {
                ret[2 * i] = "0123456789abcdef"[md[i] >> 4];
                ret[2 * i + 1] = "0123456789abcdef"[md[i] & 0xF];
        }
        ret[32] = '\0';
        return 0;
}

int job_parameters_identifying_to_string(const JobParameters *p, char **ret) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        bool first = true;
        size_t sz = 0;

        if (!p || !ret)
                return -EINVAL;

        f = open_memstream(&buf, &sz);
        if (!f)
                return -ENOMEM;

        /* JobParameters.toString(): String.format("'%s':'%s'", key, parameter) joined by ",". */
        fputc('{', f);
        for (size_t i = 0; i < p->n; i++) {
                if (!p->items[i].identifying)
                        continue;
                fprintf(f, "%s'%s':'", first ? "" : ",", p->items[i].name);
                fput_job_parameter(f, p->items + i);
                fputc('\'', f);
                first = false;
        }
        fputc('}', f);

        return memstream_finish(&f, &buf, ret);
}

int job_parameters_expand(const JobParameters *p, const char *text, char **ret, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        const char *s = text;
        size_t sz = 0;

        if (!p || !text || !ret)
                return -EINVAL;

        f = open_memstream(&buf, &sz);
        if (!f)
                return -ENOMEM;

        for (;;) {
                _cleanup_free_ char *name = NULL;
                const JobParameter *jp;
                const char *start, *end;
                char b1[SHOWN_BUF], b2[SHOWN_BUF];

                start = strstr(s, "${");
                if (!start) {
                        fputs(s, f);
                        break;
                }
                fwrite(s, 1, (size_t) (start - s), f);

                end = strchr(start + 2, '}');
                if (!end)
                        return set_error(ret_error, "Unterminated '${' in '%s'.", shown(text, b1));

                name = strndup(start + 2, (size_t) (end - start - 2));
                if (!name)
                        return -ENOMEM;

                jp = find(p, name);
                if (!jp)
                        return set_error(ret_error, "Unknown parameter '${%s}' in '%s'.",
                                         shown(name, b2), shown(text, b1));

                fputs(jp->value, f);
                s = end + 1;
        }

        return memstream_finish(&f, &buf, ret);
}
