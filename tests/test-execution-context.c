/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "execution-context.h"

static void assert_serialized(const ExecutionContext *c, const char *expected) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(execution_context_serialize(c, &s), 0);
        assert_string_equal(s, expected);
}

static void test_put_get(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;
        _cleanup_free_ char *s = NULL;

        assert_int_equal(execution_context_new(&c), 0);
        assert_int_equal(execution_context_size(c), 0);
        assert_false(execution_context_contains(c, "a"));

        assert_int_equal(execution_context_put_string(c, "name", "va\"lue/"), 0);
        assert_int_equal(execution_context_put_int64(c, "count", INT64_MIN), 0);
        assert_int_equal(execution_context_put_json(c, "flag", json_object_new_boolean(true)), 0);
        assert_int_equal(execution_context_put_json(c, "rate", json_object_new_double(1.5)), 0);
        assert_int_equal(execution_context_size(c), 4);
        assert_true(execution_context_contains(c, "name"));

        /* Strings verbatim, everything else as JSON text. */
        assert_int_equal(execution_context_get_string(c, "name", &s), 0);
        assert_string_equal(s, "va\"lue/");
        s = mfree(s);
        assert_int_equal(execution_context_get_string(c, "count", &s), 0);
        assert_string_equal(s, "-9223372036854775808");
        s = mfree(s);
        assert_int_equal(execution_context_get_string(c, "flag", &s), 0);
        assert_string_equal(s, "true");
        s = mfree(s);
        assert_int_equal(execution_context_get_string(c, "rate", &s), 0);
        assert_string_equal(s, "1.5");
        s = mfree(s);
        assert_int_equal(execution_context_get_string(c, "missing", &s), -ENOENT);
        assert_null(s);

        /* Replacing a key keeps one entry. */
        assert_int_equal(execution_context_put_int64(c, "name", 3), 0);
        assert_int_equal(execution_context_size(c), 4);
        assert_int_equal(execution_context_get_string(c, "name", &s), 0);
        assert_string_equal(s, "3");
        s = mfree(s);

        assert_int_equal(execution_context_remove(c, "name"), 1);
        assert_int_equal(execution_context_remove(c, "name"), 0);
        assert_false(execution_context_contains(c, "name"));
        assert_int_equal(execution_context_size(c), 3);

        assert_int_equal(execution_context_put_string(c, NULL, "x"), -EINVAL);
        assert_int_equal(execution_context_put_string(c, "x", NULL), -EINVAL);
        /* Ownership passes even on failure; leak checkers would notice otherwise. */
        assert_int_equal(execution_context_put_json(c, NULL, json_object_new_string("x")), -EINVAL);

        assert_null(execution_context_free(NULL));
}

static void test_serialize_sorted(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *a = NULL, *b = NULL;
        _cleanup_strv_free_ char **keys = NULL;
        json_object *nested;

        assert_int_equal(execution_context_new(&a), 0);
        assert_int_equal(execution_context_new(&b), 0);
        assert_serialized(a, "{}");

        assert_int_equal(execution_context_put_string(a, "zeta", "z"), 0);
        assert_int_equal(execution_context_put_int64(a, "alpha", 1), 0);
        assert_int_equal(execution_context_put_string(a, "Mid", "a/b"), 0);
        nested = json_object_new_object();
        json_object_object_add(nested, "y", json_object_new_int(2));
        json_object_object_add(nested, "x", json_object_new_int(1));
        assert_int_equal(execution_context_put_json(a, "obj", nested), 0);

        assert_int_equal(execution_context_put_string(b, "Mid", "a/b"), 0);
        nested = json_object_new_object();
        json_object_object_add(nested, "x", json_object_new_int(1));
        json_object_object_add(nested, "y", json_object_new_int(2));
        assert_int_equal(execution_context_put_json(b, "obj", nested), 0);
        assert_int_equal(execution_context_put_int64(b, "alpha", 1), 0);
        assert_int_equal(execution_context_put_string(b, "zeta", "z"), 0);

        /* Byte order ('M' < 'a'), nested objects sorted too, no slash escaping, no spaces. */
        assert_serialized(a, "{\"Mid\":\"a/b\",\"alpha\":1,\"obj\":{\"x\":1,\"y\":2},\"zeta\":\"z\"}");
        assert_serialized(b, "{\"Mid\":\"a/b\",\"alpha\":1,\"obj\":{\"x\":1,\"y\":2},\"zeta\":\"z\"}");

        assert_int_equal(execution_context_keys(a, &keys), 0);
        assert_non_null(keys);
        assert_string_equal(keys[0], "Mid");
        assert_string_equal(keys[1], "alpha");
        assert_string_equal(keys[2], "obj");
        assert_string_equal(keys[3], "zeta");
        assert_null(keys[4]);
}

static void test_round_trip(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL, *d = NULL, *e = NULL;
        _cleanup_free_ char *s = NULL, *t = NULL, *v = NULL;

        assert_int_equal(execution_context_new(&c), 0);
        assert_int_equal(execution_context_put_string(c, "file", "/data/in \"x\"\n\tÜ 🚀"), 0);
        assert_int_equal(execution_context_put_string(c, "k\"ey", ""), 0);
        assert_int_equal(execution_context_put_int64(c, "read.count", 9007199254740993), 0);
        assert_int_equal(execution_context_put_json(c, "rate", json_object_new_double(0.1)), 0);
        assert_int_equal(execution_context_put_json(c, "list", json_object_new_array()), 0);

        assert_int_equal(execution_context_serialize(c, &s), 0);
        assert_int_equal(execution_context_deserialize(s, &d), 0);
        assert_int_equal(execution_context_size(d), 5);
        assert_int_equal(execution_context_serialize(d, &t), 0);
        assert_string_equal(s, t);

        assert_int_equal(execution_context_get_string(d, "file", &v), 0);
        assert_string_equal(v, "/data/in \"x\"\n\tÜ 🚀");
        v = mfree(v);
        assert_int_equal(execution_context_get_string(d, "read.count", &v), 0);
        assert_string_equal(v, "9007199254740993");
        v = mfree(v);

        /* A copy is independent of its original. */
        assert_int_equal(execution_context_copy(d, &e), 0);
        assert_int_equal(execution_context_put_string(d, "file", "changed"), 0);
        assert_int_equal(execution_context_get_string(e, "file", &v), 0);
        assert_string_equal(v, "/data/in \"x\"\n\tÜ 🚀");
}

static void test_deserialize(void **state) {
        static const char *const bad[] = {
                "[]", "1", "\"s\"", "null", "true",
                "{", "{\"a\":}", "{\"a\":1,}", "{'a':1}", "{\"a\":1} x", "{\"a\":1}{}",
                "{\"a\":1 /* c */}", "{\"a\":\"\xff\"}", "garbage", "{\"a\":\"\n\"}", "{\"a\":\"\\x\"}",
                "{a:1}", "{\"a\":01}", "{\"a\":tru}", "{\"a\":[1,]}", "\xef\xbb\xbf{}",
        };
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (execution_context_deserialize(bad[i], &c) != -EINVAL)
                        fail_msg("'%s' was accepted", bad[i]);
                assert_null(c);
        }

        assert_int_equal(execution_context_deserialize(NULL, &c), 0);
        assert_int_equal(execution_context_size(c), 0);
        c = execution_context_free(c);
        assert_int_equal(execution_context_deserialize("", &c), 0);
        assert_int_equal(execution_context_size(c), 0);
        c = execution_context_free(c);
        assert_int_equal(execution_context_deserialize(" {\"b\":2,\"a\":\"x\"}\n", &c), 0);
        assert_int_equal(execution_context_size(c), 2);
        assert_serialized(c, "{\"a\":\"x\",\"b\":2}");
}

static void test_merge(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *a = NULL, *b = NULL;

        assert_int_equal(execution_context_deserialize("{\"a\":1,\"b\":2}", &a), 0);
        assert_int_equal(execution_context_deserialize("{\"b\":\"two\",\"c\":3}", &b), 0);
        assert_int_equal(execution_context_merge(a, b), 0);
        assert_serialized(a, "{\"a\":1,\"b\":\"two\",\"c\":3}");
        assert_serialized(b, "{\"b\":\"two\",\"c\":3}");

        /* Merged values are copies. */
        b = execution_context_free(b);
        assert_serialized(a, "{\"a\":1,\"b\":\"two\",\"c\":3}");

        assert_int_equal(execution_context_merge(a, a), 0);
        assert_serialized(a, "{\"a\":1,\"b\":\"two\",\"c\":3}");
}

/* A string of n characters, each the UTF-8 sequence unit. */
static char *repeat(const char *unit, size_t n) {
        size_t l = strlen(unit);
        char *s = malloc(l * n + 1);

        assert_non_null(s);
        for (size_t i = 0; i < n; i++)
                memcpy(s + i * l, unit, l);
        s[l * n] = '\0';
        return s;
}

static void assert_short(const char *unit, size_t n, bool cut) {
        _cleanup_free_ char *in = repeat(unit, n), *out = NULL, *expected = NULL;

        assert_int_equal(execution_context_short(in, &out), 0);
        if (!cut) {
                assert_string_equal(out, in);
                return;
        }

        expected = repeat(unit, EXECUTION_CONTEXT_SHORT_MAX - 8);
        assert_true(strlen(out) == strlen(expected) + 4);
        assert_memory_equal(out, expected, strlen(expected));
        assert_string_equal(out + strlen(expected), " ...");
}

static void test_short(void **state) {
        _cleanup_free_ char *s = NULL, *a = repeat("a", 2491), *rockets = repeat("🚀", 10), *in = NULL,
                *expected = NULL;

        assert_short("a", 0, false);
        assert_short("a", 2500, false);
        assert_short("a", 2501, true);
        assert_short("a", 10000, true);

        /* Characters are counted, not bytes: 2500 two-, three- and four-byte characters stay whole. */
        assert_short("é", 2500, false);
        assert_short("é", 2501, true);
        assert_short("€", 2500, false);
        assert_short("€", 2501, true);
        assert_short("🚀", 2500, false);
        assert_short("🚀", 2501, true);

        assert_int_equal(execution_context_short("{}", &s), 0);
        assert_string_equal(s, "{}");
        s = mfree(s);

        /* The cut lands right after a four-byte character: 2491 + 1 characters are kept. */
        assert_true(asprintf(&in, "%s%s", a, rockets) > 0);
        assert_true(asprintf(&expected, "%s🚀 ...", a) > 0);
        assert_int_equal(execution_context_short(in, &s), 0);
        assert_string_equal(s, expected);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_put_get),
                cmocka_unit_test(test_serialize_sorted),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_deserialize),
                cmocka_unit_test(test_merge),
                cmocka_unit_test(test_short),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
