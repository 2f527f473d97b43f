/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "job-parameters.h"

static void job_parameters_donep(JobParameters *p) {
        job_parameters_done(p);
}
#define _cleanup_job_parameters_ _cleanup_(job_parameters_donep)

static void assert_key(const JobParameters *p, const char *expected) {
        char key[33];

        assert_int_equal(job_parameters_job_key(p, key), 0);
        assert_string_equal(key, expected);
}

static void add(JobParameters *p, const char *name, JobParameterType t, const char *value, bool identifying) {
        _cleanup_free_ char *error = NULL;

        assert_int_equal(job_parameters_add(p, name, t, value, identifying, &error), 0);
        assert_null(error);
}

static void parse(JobParameters *p, const char *arg) {
        _cleanup_free_ char *error = NULL;

        assert_int_equal(job_parameters_parse_argument(p, arg, &error), 0);
        assert_null(error);
}

/* Asserts that arg is refused with a message containing needle. */
static void parse_fails(const char *arg, const char *needle) {
        _cleanup_job_parameters_ JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_free_ char *error = NULL;

        assert_int_equal(job_parameters_parse_argument(&p, arg, &error), -EINVAL);
        assert_non_null(error);
        if (!strstr(error, needle))
                fail_msg("'%s' gave '%s', expected it to mention '%s'", arg, error, needle);
        assert_int_equal(p.n, 0);
}

static void test_type_tables(void **state) {
        for (JobParameterType t = 0; t < _JOB_PARAMETER_TYPE_MAX; t++) {
                assert_int_equal(job_parameter_type_from_string(job_parameter_type_to_string(t)), t);
                assert_int_equal(job_parameter_type_from_java(job_parameter_type_to_java(t)), t);
        }
        assert_string_equal(job_parameter_type_to_java(JOB_PARAMETER_DATETIME), "java.time.LocalDateTime");
        assert_int_equal(job_parameter_type_from_string("Long"), _JOB_PARAMETER_TYPE_INVALID);
        assert_int_equal(job_parameter_type_from_string(NULL), _JOB_PARAMETER_TYPE_INVALID);
        assert_int_equal(job_parameter_type_from_java("java.lang.Integer"), _JOB_PARAMETER_TYPE_INVALID);
        assert_null(job_parameter_type_to_string(_JOB_PARAMETER_TYPE_MAX));
}

static void test_job_key(void **state) {
        _cleanup_job_parameters_ JobParameters p = JOB_PARAMETERS_NULL;

        /* Vectors computed with Spring Batch 5 DefaultJobKeyGenerator. */
        assert_key(&p, "d41d8cd98f00b204e9800998ecf8427e");

        add(&p, "ts", JOB_PARAMETER_LONG, "1700000000", false);
        assert_key(&p, "d41d8cd98f00b204e9800998ecf8427e");
        job_parameters_done(&p);

        add(&p, "run.id", JOB_PARAMETER_LONG, "1", true);
        assert_key(&p, "947cce338b790a4bb6cf8425e98bcf94");
        job_parameters_done(&p);

        add(&p, "name", JOB_PARAMETER_STRING, "testuser", true);
        assert_key(&p, "d4f7873ac0b56ba89fdc69ba0dca032f");
        job_parameters_done(&p);

        /* Sorted by name whatever the insertion order; non-identifying ones are left out. */
        add(&p, "run.id", JOB_PARAMETER_LONG, "1", true);
        add(&p, "ts", JOB_PARAMETER_DATETIME, "2024-01-15T10:30:00", false);
        add(&p, "name", JOB_PARAMETER_STRING, "testuser", true);
        assert_key(&p, "30f69685c49b6fa73e2b3b7dee3d05bf");
        job_parameters_done(&p);

        add(&p, "name", JOB_PARAMETER_STRING, "testuser", true);
        add(&p, "ts", JOB_PARAMETER_STRING, "whatever", false);
        add(&p, "run.id", JOB_PARAMETER_LONG, "+0001", true);
        assert_key(&p, "30f69685c49b6fa73e2b3b7dee3d05bf");
        job_parameters_done(&p);

        add(&p, "rate", JOB_PARAMETER_DOUBLE, "1.5", true);
        assert_key(&p, "2b6647e8082de8df7ae27a2d559383e3");
        job_parameters_done(&p);

        add(&p, "rate", JOB_PARAMETER_DOUBLE, "15e-1", true);
        assert_key(&p, "2b6647e8082de8df7ae27a2d559383e3");
        job_parameters_done(&p);

        add(&p, "day", JOB_PARAMETER_DATE, "2024-01-15", true);
        assert_key(&p, "5e617f1588d719c576c71f32786d0347");
        job_parameters_done(&p);

        /* Java sorts by UTF-16 code units: U+1F600 (a surrogate pair, 0xD83D…) comes before U+FB01, the
         * opposite of their UTF-8 byte order. Checked against String.compareTo() and MessageDigest. */
        add(&p, "\xef\xac\x81", JOB_PARAMETER_STRING, "b", true);
        add(&p, "\xf0\x9f\x98\x80", JOB_PARAMETER_STRING, "a", true);
        assert_key(&p, "90d7158744c8fe541613759ee5cbf973");
        job_parameters_done(&p);

        /* The same parameters given on a command line. */
        parse(&p, "name=testuser");
        parse(&p, "run.id(long)=1");
        parse(&p, "-ts(long)=5");
        assert_key(&p, "30f69685c49b6fa73e2b3b7dee3d05bf");
        job_parameters_done(&p);

        parse(&p, "run.id=1,java.lang.Long,true");
        parse(&p, "name=testuser,java.lang.String");
        parse(&p, "ts=5,java.lang.Long,false");
        assert_key(&p, "30f69685c49b6fa73e2b3b7dee3d05bf");
}

static void assert_double(double d, const char *expected) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(java_double_to_string(d, &s), 0);
        assert_string_equal(s, expected);
}

static void test_double_to_string(void **state) {
        volatile double a = 0.1, b = 0.2;

        assert_double(1.5, "1.5");
        assert_double(1.0, "1.0");
        assert_double(100.0, "100.0");
        assert_double(1e7, "1.0E7");
        assert_double(9999999.0, "9999999.0");
        assert_double(1e-4, "1.0E-4");
        assert_double(0.001, "0.001");
        assert_double(0.00123, "0.00123");
        assert_double(1234567.0, "1234567.0");
        assert_double(12345678.9, "1.23456789E7");
        assert_double(1.234e10, "1.234E10");
        assert_double(-2.5e-5, "-2.5E-5");
        assert_double(-1.5, "-1.5");
        assert_double(a + b, "0.30000000000000004");
        assert_double(0.1, "0.1");
        assert_double(0.0, "0.0");
        assert_double(-0.0, "-0.0");
        assert_double(NAN, "NaN");
        assert_double(INFINITY, "Infinity");
        assert_double(-INFINITY, "-Infinity");
        assert_double(1.7976931348623157e308, "1.7976931348623157E308");
        assert_double(2.2250738585072014e-308, "2.2250738585072014E-308");
        /* Double.MIN_VALUE: one digit would do, Java then takes the closer of two. */
        assert_double(4.9e-324, "4.9E-324");
        assert_double(1e23, "1.0E23");
        assert_double(2e23, "2.0E23");
        assert_double(123456789012345680.0, "1.2345678901234568E17");
        /* The nearest 16-digit decimal lies outside the narrow side of this power of two's interval. */
        assert_double(5.684341886080802e-14, "5.684341886080802E-14");
}

static void assert_canonical(JobParameterType t, const char *text, const char *expected) {
        _cleanup_free_ char *v = NULL, *error = NULL;

        assert_int_equal(job_parameter_canonicalize(t, text, &v, &error), 0);
        assert_null(error);
        assert_string_equal(v, expected);
}

static void assert_invalid(JobParameterType t, const char *text, const char *needle) {
        _cleanup_free_ char *v = NULL, *error = NULL;

        assert_int_equal(job_parameter_canonicalize(t, text, &v, &error), -EINVAL);
        assert_null(v);
        assert_non_null(error);
        if (!strstr(error, needle))
                fail_msg("'%s' gave '%s', expected it to mention '%s'", text, error, needle);
}

static void test_canonicalize_long(void **state) {
        assert_canonical(JOB_PARAMETER_LONG, "5", "5");
        assert_canonical(JOB_PARAMETER_LONG, "+05", "5");
        assert_canonical(JOB_PARAMETER_LONG, "-0", "0");
        assert_canonical(JOB_PARAMETER_LONG, "-42", "-42");
        assert_canonical(JOB_PARAMETER_LONG, "0009223372036854775807", "9223372036854775807");
        assert_canonical(JOB_PARAMETER_LONG, "-9223372036854775808", "-9223372036854775808");

        assert_invalid(JOB_PARAMETER_LONG, "9223372036854775808", "out of range");
        assert_invalid(JOB_PARAMETER_LONG, "-9223372036854775809", "out of range");
        assert_invalid(JOB_PARAMETER_LONG, "99999999999999999999999", "out of range");
        assert_invalid(JOB_PARAMETER_LONG, "abc", "Invalid value 'abc' for type long: not a number.");
        assert_invalid(JOB_PARAMETER_LONG, "", "not a number");
        assert_invalid(JOB_PARAMETER_LONG, "+", "not a number");
        assert_invalid(JOB_PARAMETER_LONG, " 5", "not a number");
        assert_invalid(JOB_PARAMETER_LONG, "5 ", "not a number");
        assert_invalid(JOB_PARAMETER_LONG, "5x", "not a number");
        assert_invalid(JOB_PARAMETER_LONG, "1.0", "not a number");
        assert_invalid(JOB_PARAMETER_LONG, "0x10", "not a number");
}

static void test_canonicalize_double(void **state) {
        assert_canonical(JOB_PARAMETER_DOUBLE, "1.5", "1.5");
        assert_canonical(JOB_PARAMETER_DOUBLE, "1", "1.0");
        assert_canonical(JOB_PARAMETER_DOUBLE, "+1.", "1.0");
        assert_canonical(JOB_PARAMETER_DOUBLE, ".5", "0.5");
        assert_canonical(JOB_PARAMETER_DOUBLE, "1e7", "1.0E7");
        assert_canonical(JOB_PARAMETER_DOUBLE, "1E-4", "1.0E-4");
        assert_canonical(JOB_PARAMETER_DOUBLE, "-0", "-0.0");
        assert_canonical(JOB_PARAMETER_DOUBLE, "NaN", "NaN");
        assert_canonical(JOB_PARAMETER_DOUBLE, "-Infinity", "-Infinity");
        assert_canonical(JOB_PARAMETER_DOUBLE, "1e-400", "0.0");

        assert_invalid(JOB_PARAMETER_DOUBLE, "", "not a number");
        assert_invalid(JOB_PARAMETER_DOUBLE, "abc", "not a number");
        assert_invalid(JOB_PARAMETER_DOUBLE, "0x1p3", "not a number");
        assert_invalid(JOB_PARAMETER_DOUBLE, " 1.5", "not a number");
        assert_invalid(JOB_PARAMETER_DOUBLE, "1.5x", "not a number");
        assert_invalid(JOB_PARAMETER_DOUBLE, "1e", "not a number");
        assert_invalid(JOB_PARAMETER_DOUBLE, ".", "not a number");
        assert_invalid(JOB_PARAMETER_DOUBLE, "nan(1)", "not a number");
        assert_invalid(JOB_PARAMETER_DOUBLE, "1e400", "out of range");
}

static void test_canonicalize_date(void **state) {
        assert_canonical(JOB_PARAMETER_DATE, "2024-01-15", "2024-01-15");
        assert_canonical(JOB_PARAMETER_DATE, "2024-02-29", "2024-02-29");
        assert_canonical(JOB_PARAMETER_DATE, "2000-02-29", "2000-02-29");
        assert_canonical(JOB_PARAMETER_DATE, "2024-12-31", "2024-12-31");

        assert_invalid(JOB_PARAMETER_DATE, "2023-02-29", "no such date");
        assert_invalid(JOB_PARAMETER_DATE, "1900-02-29", "no such date");
        assert_invalid(JOB_PARAMETER_DATE, "2024-04-31", "no such date");
        assert_invalid(JOB_PARAMETER_DATE, "2024-13-01", "no such date");
        assert_invalid(JOB_PARAMETER_DATE, "2024-00-10", "no such date");
        assert_invalid(JOB_PARAMETER_DATE, "2024-01-00", "no such date");
        assert_invalid(JOB_PARAMETER_DATE, "2024-1-15", "YYYY-MM-DD");
        assert_invalid(JOB_PARAMETER_DATE, "2024/01/15", "YYYY-MM-DD");
        assert_invalid(JOB_PARAMETER_DATE, "2024-01-15T00:00", "YYYY-MM-DD");
        assert_invalid(JOB_PARAMETER_DATE, "", "YYYY-MM-DD");
}

static void test_canonicalize_datetime(void **state) {
        assert_canonical(JOB_PARAMETER_DATETIME, "2024-01-15T10:30", "2024-01-15T10:30");
        assert_canonical(JOB_PARAMETER_DATETIME, "2024-01-15T10:30:00", "2024-01-15T10:30");
        assert_canonical(JOB_PARAMETER_DATETIME, "2024-01-15 10:30:05", "2024-01-15T10:30:05");
        assert_canonical(JOB_PARAMETER_DATETIME, "2024-01-15T10:30:00.0", "2024-01-15T10:30");
        assert_canonical(JOB_PARAMETER_DATETIME, "2024-01-15T10:30:00.5", "2024-01-15T10:30:00.500");
        assert_canonical(JOB_PARAMETER_DATETIME, "2024-01-15T10:30:05.123", "2024-01-15T10:30:05.123");
        assert_canonical(JOB_PARAMETER_DATETIME, "2024-01-15T10:30:05.1234", "2024-01-15T10:30:05.123400");
        assert_canonical(JOB_PARAMETER_DATETIME, "2024-01-15T10:30:05.000001", "2024-01-15T10:30:05.000001");
        assert_canonical(JOB_PARAMETER_DATETIME, "2024-01-15T10:30:05.123456789", "2024-01-15T10:30:05.123456789");
        assert_canonical(JOB_PARAMETER_DATETIME, "2024-02-29T23:59:59", "2024-02-29T23:59:59");
        assert_canonical(JOB_PARAMETER_DATETIME, "2026-11-21T02:00:00", "2026-11-21T02:00");

        assert_invalid(JOB_PARAMETER_DATETIME, "2024-01-15T24:00", "no such time");
        assert_invalid(JOB_PARAMETER_DATETIME, "2024-01-15T10:60", "no such time");
        assert_invalid(JOB_PARAMETER_DATETIME, "2024-01-15T10:30:60", "no such time");
        assert_invalid(JOB_PARAMETER_DATETIME, "2023-02-29T10:30", "no such date");
        assert_invalid(JOB_PARAMETER_DATETIME, "2024-01-15", "YYYY-MM-DDTHH:MM");
        assert_invalid(JOB_PARAMETER_DATETIME, "2024-01-15T10", "YYYY-MM-DDTHH:MM");
        assert_invalid(JOB_PARAMETER_DATETIME, "2024-01-15T10:30:05.", "YYYY-MM-DDTHH:MM");
        assert_invalid(JOB_PARAMETER_DATETIME, "2024-01-15T10:30:05.1234567891", "YYYY-MM-DDTHH:MM");
        assert_invalid(JOB_PARAMETER_DATETIME, "2024-01-15T10:30Z", "YYYY-MM-DDTHH:MM");
}

static void test_canonicalize_string(void **state) {
        assert_canonical(JOB_PARAMETER_STRING, "", "");
        assert_canonical(JOB_PARAMETER_STRING, " a b ", " a b ");
        assert_canonical(JOB_PARAMETER_STRING, "Grüße 🚀", "Grüße 🚀");
        assert_invalid(JOB_PARAMETER_STRING, "\xff", "not valid UTF-8");
        assert_invalid(JOB_PARAMETER_LONG, "\xc3\x28", "not valid UTF-8");
}

static void test_utf8(void **state) {
        assert_true(utf8_is_valid(""));
        assert_true(utf8_is_valid("plain ascii"));
        assert_true(utf8_is_valid("\xc2\x80"));                 /* U+0080 */
        assert_true(utf8_is_valid("\xed\x9f\xbf"));             /* U+D7FF */
        assert_true(utf8_is_valid("\xee\x80\x80"));             /* U+E000 */
        assert_true(utf8_is_valid("\xf4\x8f\xbf\xbf"));         /* U+10FFFF */
        assert_false(utf8_is_valid(NULL));
        assert_false(utf8_is_valid("\x80"));                    /* lone continuation */
        assert_false(utf8_is_valid("\xc3"));                    /* truncated */
        assert_false(utf8_is_valid("\xe2\x82"));
        assert_false(utf8_is_valid("\xc0\xaf"));                /* overlong '/' */
        assert_false(utf8_is_valid("\xc1\xbf"));
        assert_false(utf8_is_valid("\xe0\x80\xaf"));
        assert_false(utf8_is_valid("\xf0\x80\x80\xaf"));
        assert_false(utf8_is_valid("\xed\xa0\x80"));            /* U+D800 */
        assert_false(utf8_is_valid("\xed\xbf\xbf"));            /* U+DFFF */
        assert_false(utf8_is_valid("\xf4\x90\x80\x80"));        /* U+110000 */
        assert_false(utf8_is_valid("\xf8\x88\x80\x80\x80"));
        assert_false(utf8_is_valid("\xfe"));
        assert_false(utf8_is_valid("a\xc3" "a"));
}

static void test_add_replace_get(void **state) {
        _cleanup_job_parameters_ JobParameters p = JOB_PARAMETERS_NULL, copy = JOB_PARAMETERS_NULL;
        const JobParameter *jp;

        add(&p, "a", JOB_PARAMETER_STRING, "x", true);
        add(&p, "b", JOB_PARAMETER_LONG, "+7", true);
        add(&p, "c", JOB_PARAMETER_DOUBLE, "2.5", false);
        assert_int_equal(p.n, 3);
        assert_true(job_parameters_has_identifying(&p));

        jp = job_parameters_get(&p, "b");
        assert_non_null(jp);
        assert_string_equal(jp->value, "7");
        assert_int_equal(jp->long_value, 7);
        assert_true(jp->identifying);
        assert_true(job_parameters_get(&p, "c")->double_value == 2.5);
        assert_null(job_parameters_get(&p, "d"));

        /* Replacing keeps the position. */
        add(&p, "a", JOB_PARAMETER_LONG, "9", false);
        assert_int_equal(p.n, 3);
        assert_string_equal(p.items[0].name, "a");
        assert_int_equal(p.items[0].type, JOB_PARAMETER_LONG);
        assert_string_equal(p.items[0].value, "9");
        assert_false(p.items[0].identifying);

        assert_int_equal(job_parameters_copy(&p, &copy), 0);
        assert_int_equal(copy.n, 3);
        for (size_t i = 0; i < p.n; i++) {
                assert_ptr_not_equal(copy.items[i].name, p.items[i].name);
                assert_string_equal(copy.items[i].name, p.items[i].name);
                assert_string_equal(copy.items[i].value, p.items[i].value);
                assert_int_equal(copy.items[i].type, p.items[i].type);
                assert_int_equal(copy.items[i].identifying, p.items[i].identifying);
        }

        job_parameters_done(&p);
        assert_int_equal(p.n, 0);
        assert_null(p.items);
        assert_false(job_parameters_has_identifying(&p));
        job_parameters_done(&p);
        job_parameters_done(NULL);

        /* The copy survives the original. */
        assert_string_equal(job_parameters_get(&copy, "b")->value, "7");

        job_parameters_done(&copy);
        assert_int_equal(job_parameters_copy(&copy, &p), 0);
        assert_int_equal(p.n, 0);
}

static void test_add_rejects(void **state) {
        _cleanup_job_parameters_ JobParameters p = JOB_PARAMETERS_NULL;
        char name[JOB_PARAMETER_NAME_MAX + 2], value[JOB_PARAMETER_VALUE_MAX + 2];
        static const struct {
                const char *name, *value;
                JobParameterType type;
                const char *message;
        } bad[] = {
                { "",       "v",   JOB_PARAMETER_STRING, "Parameter name must not be empty." },
                { "a\xff",  "v",   JOB_PARAMETER_STRING, "Parameter name is not valid UTF-8." },
                { "x",      "\xc3\x28", JOB_PARAMETER_STRING, "Parameter 'x' value is not valid UTF-8." },
                { "a=b",    "v",   JOB_PARAMETER_STRING, "must not contain '='" },
                { "a(b",    "v",   JOB_PARAMETER_STRING, "must not contain '('" },
                { "a)",     "v",   JOB_PARAMETER_STRING, "must not contain ')'" },
                { "a\tb",   "v",   JOB_PARAMETER_STRING, "control characters" },
                { "-a",     "v",   JOB_PARAMETER_STRING, "must not start with '-'" },
                { "count",  "abc", JOB_PARAMETER_LONG,
                  "Invalid value 'abc' for parameter 'count' of type long: not a number." },
        };
        _cleanup_free_ char *error = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                error = mfree(error);
                assert_int_equal(job_parameters_add(&p, bad[i].name, bad[i].type, bad[i].value, true, &error),
                                 -EINVAL);
                assert_non_null(error);
                if (!strstr(error, bad[i].message))
                        fail_msg("'%s' gave '%s'", bad[i].name, error);
        }
        assert_int_equal(job_parameters_add(&p, NULL, JOB_PARAMETER_STRING, "v", true, NULL), -EINVAL);
        assert_int_equal(job_parameters_add(&p, "x", _JOB_PARAMETER_TYPE_MAX, "v", true, NULL), -EINVAL);

        memset(name, 'n', JOB_PARAMETER_NAME_MAX);
        name[JOB_PARAMETER_NAME_MAX] = '\0';
        add(&p, name, JOB_PARAMETER_STRING, "v", true);
        name[JOB_PARAMETER_NAME_MAX] = 'n';
        name[JOB_PARAMETER_NAME_MAX + 1] = '\0';
        error = mfree(error);
        assert_int_equal(job_parameters_add(&p, name, JOB_PARAMETER_STRING, "v", true, &error), -EINVAL);
        assert_non_null(strstr(error, "is longer than 100 bytes."));
        /* The name is quoted shortened. */
        assert_null(strstr(error, name));

        memset(value, 'v', JOB_PARAMETER_VALUE_MAX);
        value[JOB_PARAMETER_VALUE_MAX] = '\0';
        add(&p, "long", JOB_PARAMETER_STRING, value, true);
        value[JOB_PARAMETER_VALUE_MAX] = 'v';
        value[JOB_PARAMETER_VALUE_MAX + 1] = '\0';
        error = mfree(error);
        assert_int_equal(job_parameters_add(&p, "toolong", JOB_PARAMETER_STRING, value, true, &error), -EINVAL);
        assert_string_equal(error, "Parameter 'toolong' value is longer than 2500 bytes.");

        /* Nothing was added by the failures. */
        assert_int_equal(p.n, 2);
}

static void test_parse_argument(void **state) {
        _cleanup_job_parameters_ JobParameters p = JOB_PARAMETERS_NULL;
        const JobParameter *jp;

        parse(&p, "name=testuser");
        parse(&p, "count(long)=5");
        parse(&p, "rate(double)=1.5");
        parse(&p, "day(date)=2026-11-21");
        parse(&p, "at(datetime)=2026-11-21T02:00:00");
        parse(&p, "s(string)=v");
        parse(&p, "-ts(long)=5");
        parse(&p, "-note=hello");
        parse(&p, "cmd=; rm -rf /");
        parse(&p, "sub=$(touch /tmp/x)");
        parse(&p, "eq=a=b;c  d");
        parse(&p, "csv=a,b,c");
        parse(&p, "fake=x,java.lang.Integer");
        parse(&p, "flag=x,true");
        parse(&p, "empty=");
        parse(&p, "sb5long=42,java.lang.Long,true");
        parse(&p, "sb5str=a,b,java.lang.String");
        parse(&p, "sb5date=2024-01-15,java.time.LocalDate,false");
        parse(&p, "sb5dt=2024-01-15T10:30:00,java.time.LocalDateTime");
        parse(&p, "sb5d=1e7,java.lang.Double");
        parse(&p, "-sb5neg=x,java.lang.String");
        parse(&p, "sb5empty=,java.lang.String");

        static const struct {
                const char *name;
                JobParameterType type;
                const char *value;
                bool identifying;
        } expected[] = {
                { "name",     JOB_PARAMETER_STRING,   "testuser",          true  },
                { "count",    JOB_PARAMETER_LONG,     "5",                 true  },
                { "rate",     JOB_PARAMETER_DOUBLE,   "1.5",               true  },
                { "day",      JOB_PARAMETER_DATE,     "2026-11-21",        true  },
                { "at",       JOB_PARAMETER_DATETIME, "2026-11-21T02:00",  true  },
                { "s",        JOB_PARAMETER_STRING,   "v",                 true  },
                { "ts",       JOB_PARAMETER_LONG,     "5",                 false },
                { "note",     JOB_PARAMETER_STRING,   "hello",             false },
                { "cmd",      JOB_PARAMETER_STRING,   "; rm -rf /",        true  },
                { "sub",      JOB_PARAMETER_STRING,   "$(touch /tmp/x)",   true  },
                { "eq",       JOB_PARAMETER_STRING,   "a=b;c  d",          true  },
                { "csv",      JOB_PARAMETER_STRING,   "a,b,c",             true  },
                { "fake",     JOB_PARAMETER_STRING,   "x,java.lang.Integer", true },
                { "flag",     JOB_PARAMETER_STRING,   "x,true",            true  },
                { "empty",    JOB_PARAMETER_STRING,   "",                  true  },
                { "sb5long",  JOB_PARAMETER_LONG,     "42",                true  },
                { "sb5str",   JOB_PARAMETER_STRING,   "a,b",               true  },
                { "sb5date",  JOB_PARAMETER_DATE,     "2024-01-15",        false },
                { "sb5dt",    JOB_PARAMETER_DATETIME, "2024-01-15T10:30",  true  },
                { "sb5d",     JOB_PARAMETER_DOUBLE,   "1.0E7",             true  },
                { "sb5neg",   JOB_PARAMETER_STRING,   "x",                 false },
                { "sb5empty", JOB_PARAMETER_STRING,   "",                  true  },
        };

        assert_int_equal(p.n, ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                jp = p.items + i;
                assert_string_equal(jp->name, expected[i].name);
                assert_int_equal(jp->type, expected[i].type);
                assert_string_equal(jp->value, expected[i].value);
                assert_int_equal(jp->identifying, expected[i].identifying);
        }

        /* A later argument replaces an earlier one of the same name. */
        parse(&p, "name(long)=7");
        assert_int_equal(p.n, ELEMENTSOF(expected));
        assert_int_equal(p.items[0].type, JOB_PARAMETER_LONG);
        assert_string_equal(p.items[0].value, "7");
}

static void test_parse_argument_rejects(void **state) {
        char arg[16 + JOB_PARAMETER_VALUE_MAX + 2];

        parse_fails("noequals", "name=value");
        parse_fails("=v", "Parameter name must not be empty.");
        parse_fails("-=v", "Parameter name must not be empty.");
        parse_fails("(long)=5", "Parameter name must not be empty.");
        parse_fails("x(integer)=5", "Unknown type 'integer'");
        parse_fails("x(Long)=5", "Unknown type 'Long'");
        parse_fails("x(long=5", "')'");
        parse_fails("x(long)y=5", "')'");
        parse_fails("x(long)=abc", "Invalid value 'abc' for parameter 'x' of type long: not a number.");
        parse_fails("x(long)=5,java.lang.Long", "not a number");
        parse_fails("x=abc,java.lang.Long", "Invalid value 'abc' for parameter 'x' of type long");
        parse_fails("x(date)=2023-02-29", "no such date");
        parse_fails("--x=v", "must not start with '-'");
        parse_fails("-x=v,java.lang.String,true", "identifying");
        parse_fails("x=\xff", "Parameter 'x' value is not valid UTF-8.");
        parse_fails("\xff=v", "Parameter name is not valid UTF-8.");
        parse_fails("nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn=v",
                    "is longer than 100 bytes.");

        strcpy(arg, "big=");
        memset(arg + 4, 'v', JOB_PARAMETER_VALUE_MAX + 1);
        arg[4 + JOB_PARAMETER_VALUE_MAX + 1] = '\0';
        parse_fails(arg, "Parameter 'big' value is longer than 2500 bytes.");
}

static void assert_argument_round_trip(const char *arg, const char *expected) {
        _cleanup_job_parameters_ JobParameters p = JOB_PARAMETERS_NULL, q = JOB_PARAMETERS_NULL;
        _cleanup_free_ char *s = NULL;

        parse(&p, arg);
        assert_int_equal(job_parameter_to_argument(p.items, &s), 0);
        assert_string_equal(s, expected);

        parse(&q, s);
        assert_string_equal(q.items[0].name, p.items[0].name);
        assert_string_equal(q.items[0].value, p.items[0].value);
        assert_int_equal(q.items[0].type, p.items[0].type);
        assert_int_equal(q.items[0].identifying, p.items[0].identifying);
}

/* A value given by name only takes the type the job declares; the job key then equals the typed launch's. */
static void test_declared_type(void **state) {
        _cleanup_job_parameters_ JobParameters untyped = JOB_PARAMETERS_NULL, typed = JOB_PARAMETERS_NULL,
                                               explicit = JOB_PARAMETERS_NULL;
        char k1[33], k2[33];
        char *msg = NULL;
        JobParameter *p;

        assert_int_equal(job_parameters_parse_argument(&untyped, "day=2026-12-01", NULL), 0);
        assert_int_equal(job_parameters_parse_argument(&untyped, "n=+05", NULL), 0);
        assert_int_equal(job_parameters_parse_argument(&typed, "day(date)=2026-12-01", NULL), 0);
        assert_int_equal(job_parameters_parse_argument(&typed, "n(long)=5", NULL), 0);
        assert_int_equal(job_parameters_parse_argument(&explicit, "a(string)=x", NULL), 0);
        assert_int_equal(job_parameters_parse_argument(&explicit, "b=x,java.lang.String", NULL), 0);
        assert_int_equal(job_parameters_parse_argument(&explicit, "c(date)=2026-12-01", NULL), 0);

        assert_true(untyped.items[0].untyped && untyped.items[1].untyped);
        assert_int_equal(untyped.items[0].type, JOB_PARAMETER_STRING);
        assert_string_equal(untyped.items[1].value, "+05");
        for (size_t i = 0; i < explicit.n; i++)
                assert_false(explicit.items[i].untyped);

        assert_int_equal(job_parameter_apply_declared_type(untyped.items + 0, JOB_PARAMETER_DATE, NULL), 0);
        assert_int_equal(job_parameter_apply_declared_type(untyped.items + 1, JOB_PARAMETER_LONG, NULL), 0);
        assert_int_equal(untyped.items[0].type, JOB_PARAMETER_DATE);
        assert_false(untyped.items[0].untyped);
        assert_string_equal(untyped.items[1].value, "5");
        assert_true(untyped.items[1].long_value == 5);
        assert_int_equal(job_parameters_job_key(&untyped, k1), 0);
        assert_int_equal(job_parameters_job_key(&typed, k2), 0);
        assert_string_equal(k1, k2);

        /* a value that is not of the declared type: refused, naming the parameter and the type */
        {
                _cleanup_job_parameters_ JobParameters bad = JOB_PARAMETERS_NULL;

                assert_int_equal(job_parameters_parse_argument(&bad, "day=2026-13-01", NULL), 0);
                assert_int_equal(job_parameter_apply_declared_type(bad.items, JOB_PARAMETER_DATE, &msg), -EINVAL);
                assert_string_equal(msg, "Invalid value '2026-13-01' for parameter 'day' of type date: no such date.");
                msg = mfree(msg);
                /* unchanged */
                assert_true(bad.items[0].untyped);
                assert_string_equal(bad.items[0].value, "2026-13-01");
        }

        /* explicit types must agree with the declaration */
        assert_int_equal(job_parameter_apply_declared_type(explicit.items + 0, JOB_PARAMETER_STRING, NULL), 0);
        assert_int_equal(job_parameter_apply_declared_type(explicit.items + 1, JOB_PARAMETER_DATE, &msg), -EINVAL);
        assert_string_equal(msg, "Parameter 'b' is declared by the job as a date, but was given as a string.");
        msg = mfree(msg);
        assert_int_equal(job_parameter_apply_declared_type(explicit.items + 2, JOB_PARAMETER_DATETIME, &msg), -EINVAL);
        assert_string_equal(msg, "Parameter 'c' is declared by the job as a datetime, but was given as a date.");
        msg = mfree(msg);

        /* replacing by a typed add clears the mark */
        assert_int_equal(job_parameters_parse_argument(&explicit, "d=1", NULL), 0);
        p = explicit.items + explicit.n - 1;
        assert_true(p->untyped);
        assert_int_equal(job_parameters_add(&explicit, "d", JOB_PARAMETER_LONG, "1", true, NULL), 0);
        assert_false(p->untyped);
}

static void test_to_argument(void **state) {
        assert_argument_round_trip("name=testuser", "name=testuser");
        assert_argument_round_trip("run.id(long)=1", "run.id(long)=1");
        assert_argument_round_trip("-ts(long)=+5", "-ts(long)=5");
        assert_argument_round_trip("rate=1.50,java.lang.Double", "rate(double)=1.5");
        assert_argument_round_trip("day(date)=2024-01-15", "day(date)=2024-01-15");
        assert_argument_round_trip("-at(datetime)=2024-01-15 10:30:00", "-at(datetime)=2024-01-15T10:30");
        assert_argument_round_trip("-note=a=b; $(x)", "-note=a=b; $(x)");
        assert_argument_round_trip("e=", "e=");
        /* Strings that look like Spring Batch 5 arguments keep their type explicit. */
        assert_argument_round_trip("s(string)=5,java.lang.Long", "s(string)=5,java.lang.Long");
        assert_argument_round_trip("s(string)=x,java.lang.String,false", "s(string)=x,java.lang.String,false");
}

static void test_identifying_to_string(void **state) {
        _cleanup_job_parameters_ JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_free_ char *s = NULL;

        assert_int_equal(job_parameters_identifying_to_string(&p, &s), 0);
        assert_string_equal(s, "{}");
        s = mfree(s);

        add(&p, "ts", JOB_PARAMETER_LONG, "5", false);
        assert_int_equal(job_parameters_identifying_to_string(&p, &s), 0);
        assert_string_equal(s, "{}");
        s = mfree(s);

        add(&p, "name", JOB_PARAMETER_STRING, "testuser", true);
        add(&p, "run.id", JOB_PARAMETER_LONG, "1", true);
        assert_int_equal(job_parameters_identifying_to_string(&p, &s), 0);
        assert_string_equal(s,
                            "{'name':'{value=testuser, type=class java.lang.String, identifying=true}',"
                            "'run.id':'{value=1, type=class java.lang.Long, identifying=true}'}");
        s = mfree(s);

        /* Insertion order, not sorted. */
        job_parameters_done(&p);
        add(&p, "z", JOB_PARAMETER_DATE, "2024-01-15", true);
        add(&p, "a", JOB_PARAMETER_DOUBLE, "1", true);
        assert_int_equal(job_parameters_identifying_to_string(&p, &s), 0);
        assert_string_equal(s,
                            "{'z':'{value=2024-01-15, type=class java.time.LocalDate, identifying=true}',"
                            "'a':'{value=1.0, type=class java.lang.Double, identifying=true}'}");
}

static void test_expand(void **state) {
        _cleanup_job_parameters_ JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_free_ char *s = NULL, *error = NULL;

        add(&p, "input", JOB_PARAMETER_STRING, "/data/in file.csv", true);
        add(&p, "evil", JOB_PARAMETER_STRING, "; rm -rf / $(touch /tmp/x) ${input}", true);
        add(&p, "n", JOB_PARAMETER_LONG, "+3", true);

        assert_int_equal(job_parameters_expand(&p, "import ${input} --count=${n}", &s, &error), 0);
        assert_string_equal(s, "import /data/in file.csv --count=3");
        s = mfree(s);

        /* Values go in verbatim and are not expanded again. */
        assert_int_equal(job_parameters_expand(&p, "${evil}", &s, &error), 0);
        assert_string_equal(s, "; rm -rf / $(touch /tmp/x) ${input}");
        s = mfree(s);

        assert_int_equal(job_parameters_expand(&p, "cost $5 $$ $n ${n}${n}", &s, &error), 0);
        assert_string_equal(s, "cost $5 $$ $n 33");
        s = mfree(s);

        assert_int_equal(job_parameters_expand(&p, "", &s, &error), 0);
        assert_string_equal(s, "");
        s = mfree(s);
        assert_null(error);

        assert_int_equal(job_parameters_expand(&p, "run ${unknown} now", &s, &error), -EINVAL);
        assert_null(s);
        assert_string_equal(error, "Unknown parameter '${unknown}' in 'run ${unknown} now'.");
        error = mfree(error);

        assert_int_equal(job_parameters_expand(&p, "${}", &s, &error), -EINVAL);
        assert_non_null(strstr(error, "'${}'"));
        error = mfree(error);

        assert_int_equal(job_parameters_expand(&p, "oops ${input", &s, &error), -EINVAL);
        assert_non_null(strstr(error, "Unterminated"));
        assert_null(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_type_tables),
                cmocka_unit_test(test_job_key),
                cmocka_unit_test(test_double_to_string),
                cmocka_unit_test(test_canonicalize_long),
                cmocka_unit_test(test_canonicalize_double),
                cmocka_unit_test(test_canonicalize_date),
                cmocka_unit_test(test_canonicalize_datetime),
                cmocka_unit_test(test_canonicalize_string),
                cmocka_unit_test(test_utf8),
                cmocka_unit_test(test_add_replace_get),
                cmocka_unit_test(test_add_rejects),
                cmocka_unit_test(test_parse_argument),
                cmocka_unit_test(test_parse_argument_rejects),
                cmocka_unit_test(test_declared_type),
                cmocka_unit_test(test_to_argument),
                cmocka_unit_test(test_identifying_to_string),
                cmocka_unit_test(test_expand),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
