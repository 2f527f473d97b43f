/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "context-format.h"
#include "context-java.h"
#include "jdk-context-vectors.h"

static ExecutionContext *parse_ok(const char *text) {
        ExecutionContext *c = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = execution_context_parse(text, strlen(text), &c, &error);
        if (r < 0)
                fail_msg("parse failed: %s (%s)", strerror(-r), strna(error));
        assert_null(error);
        return c;
}

static void assert_json(const ExecutionContext *c, const char *expected) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(execution_context_serialize(c, &s), 0);
        assert_string_equal(s, expected);
}

static char *serialize_as(const ExecutionContext *c, ContextFormat f) {
        _cleanup_free_ char *error = NULL;
        char *s = NULL;
        int r;

        r = execution_context_serialize_as(c, f, &s, &error);
        if (r < 0)
                fail_msg("serialize failed: %s (%s)", strerror(-r), strna(error));
        return s;
}

/* Expects failure with r and a message containing needle. */
static void assert_parse_error(const char *text, size_t size, int r, const char *needle) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;
        _cleanup_free_ char *error = NULL;

        assert_int_equal(execution_context_parse(text, size, &c, &error), r);
        assert_null(c);
        assert_non_null(error);
        if (needle && !strstr(error, needle))
                fail_msg("error '%s' lacks '%s'", error, needle);
}

static size_t base64_decode(const char *text, uint8_t **ret) {
        size_t n = strlen(text), pad = 0;
        uint8_t *out = malloc(n / 4 * 3 + 1);
        int k;

        assert_non_null(out);
        while (n > 0 && text[n - 1 - pad] == '=' && pad < 2)
                pad++;
        k = EVP_DecodeBlock(out, (const unsigned char *) text, (int) n);
        assert_true(k >= 0);
        *ret = out;
        return (size_t) k - pad;
}

/* ---- the JDK's bytes ---- */

static void test_java_read_scalars(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = parse_ok(JDK_CONTEXT_SCALARS);

        assert_json(c, "{\"bool\":true,\"double\":1.5,\"int\":42,\"long\":5000000000,\"string\":\"Hello, wörld\"}");
        assert_int_equal(execution_context_get_java_type(c, "bool"), JAVA_TYPE_BOOLEAN);
        assert_int_equal(execution_context_get_java_type(c, "double"), JAVA_TYPE_DOUBLE);
        assert_int_equal(execution_context_get_java_type(c, "int"), JAVA_TYPE_INTEGER);
        assert_int_equal(execution_context_get_java_type(c, "long"), JAVA_TYPE_LONG);
        assert_int_equal(execution_context_get_java_type(c, "string"), JAVA_TYPE_STRING);
}

static void test_java_read_all_types(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = parse_ok(JDK_CONTEXT_ALL);
        json_object *emoji;

        /* NUL and a supplementary character arrive as UTF-8; NaN and infinities as Jackson spells them. */
        assert_json(c, "{\"b\":100,\"c\":\"é\",\"d\":-0.25,\"emoji\":\"\\u0000a😀\",\"f\":2.5,\"i\":-7,\"i2\":8,"
                       "\"inf\":\"-Infinity\",\"l\":-9223372036854775808,\"l2\":3,\"nan\":\"NaN\",\"s\":\"x\","
                       "\"sh\":-300,\"z\":false}");
        emoji = json_object_object_get(c->object, "emoji");
        assert_int_equal(json_object_get_string_len(emoji), 6);

        assert_int_equal(execution_context_get_java_type(c, "b"), JAVA_TYPE_BYTE);
        assert_int_equal(execution_context_get_java_type(c, "c"), JAVA_TYPE_CHARACTER);
        assert_int_equal(execution_context_get_java_type(c, "f"), JAVA_TYPE_FLOAT);
        assert_int_equal(execution_context_get_java_type(c, "sh"), JAVA_TYPE_SHORT);
        assert_int_equal(execution_context_get_java_type(c, "nan"), JAVA_TYPE_DOUBLE);
        assert_int_equal(execution_context_get_java_type(c, "l2"), JAVA_TYPE_LONG);
        assert_int_equal(execution_context_get_java_type(c, "i2"), JAVA_TYPE_INTEGER);
}

static void test_java_read_spring_and_references(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL, *e = NULL, *m = NULL;

        c = parse_ok(JDK_CONTEXT_SPRING);
        assert_json(c, "{\"FlatFileItemReader.read.count\":25000,"
                       "\"batch.stepType\":\"org.springframework.batch.core.step.tasklet.TaskletStep\","
                       "\"batch.taskletType\":\"org.springframework.batch.core.step.item.ChunkOrientedTasklet\","
                       "\"batch.version\":\"5.0.3\"}");

        /* The second use of one Integer object and of one String object are TC_REFERENCEs. */
        m = parse_ok(JDK_CONTEXT_SHARED);
        assert_json(m, "{\"a\":1,\"b\":1,\"k\":\"k\"}");
        assert_int_equal(execution_context_get_java_type(m, "b"), JAVA_TYPE_INTEGER);

        e = parse_ok(JDK_CONTEXT_EMPTY);
        assert_int_equal(execution_context_size(e), 0);
        execution_context_free(parse_ok(JDK_CONTEXT_MANY));
}

/* batchd's writer gives the JDK's bytes, byte for byte, for maps filled in key order (ContextInterop). */
static void test_java_write_matches_jdk(void **state) {
        const char *vectors[] = { JDK_CONTEXT_EMPTY, JDK_CONTEXT_SCALARS, JDK_CONTEXT_ALL, JDK_CONTEXT_SPRING,
                                  JDK_CONTEXT_MANY };

        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                _cleanup_(execution_context_freep) ExecutionContext *c = parse_ok(vectors[i]);
                _cleanup_free_ char *s = serialize_as(c, CONTEXT_FORMAT_JAVA);

                assert_string_equal(s, vectors[i]);
        }
}

/* ---- types ---- */

static void test_default_types(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL, *back = NULL;
        _cleanup_free_ char *java = NULL, *jackson = NULL;

        /* A context older batchd wrote: no remembered classes. */
        c = parse_ok("{\"n\":5,\"s\":\"five\",\"d\":2.0,\"t\":true,\"z\":null}");
        assert_int_equal(execution_context_get_java_type(c, "n"), JAVA_TYPE_NONE);

        java = serialize_as(c, CONTEXT_FORMAT_JAVA);
        back = parse_ok(java);
        assert_json(back, "{\"d\":2.0,\"n\":5,\"s\":\"five\",\"t\":true,\"z\":null}");
        assert_int_equal(execution_context_get_java_type(back, "n"), JAVA_TYPE_LONG);
        assert_int_equal(execution_context_get_java_type(back, "d"), JAVA_TYPE_DOUBLE);
        assert_int_equal(execution_context_get_java_type(back, "s"), JAVA_TYPE_STRING);
        assert_int_equal(execution_context_get_java_type(back, "t"), JAVA_TYPE_BOOLEAN);
        assert_int_equal(execution_context_get_java_type(back, "z"), JAVA_TYPE_NONE);

        /* The same classes in the Jackson format: Long with a type id, Double with a decimal point. */
        jackson = serialize_as(c, CONTEXT_FORMAT_JACKSON);
        assert_string_equal(jackson, "{\"@class\":\"java.util.HashMap\",\"d\":2.0,\"n\":[\"java.lang.Long\",5],"
                                     "\"s\":\"five\",\"t\":true,\"z\":null}");
}

static void test_type_memory(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL, *copy = NULL, *merged = NULL, *back = NULL;
        _cleanup_free_ char *java = NULL;

        c = parse_ok(JDK_CONTEXT_ALL);

        /* Copy and merge carry the classes along. */
        assert_int_equal(execution_context_copy(c, &copy), 0);
        assert_int_equal(execution_context_get_java_type(copy, "i"), JAVA_TYPE_INTEGER);
        assert_int_equal(execution_context_new(&merged), 0);
        assert_int_equal(execution_context_put_string(merged, "i", "replaced"), 0);
        assert_int_equal(execution_context_merge(merged, c), 0);
        assert_int_equal(execution_context_get_java_type(merged, "i"), JAVA_TYPE_INTEGER);
        assert_int_equal(execution_context_get_java_type(merged, "sh"), JAVA_TYPE_SHORT);

        /* A new value has no class until it gets one; removing forgets the class. */
        assert_int_equal(execution_context_put_int64(copy, "i", 1), 0);
        assert_int_equal(execution_context_get_java_type(copy, "i"), JAVA_TYPE_NONE);
        assert_int_equal(execution_context_remove(copy, "sh"), 1);
        assert_int_equal(execution_context_get_java_type(copy, "sh"), JAVA_TYPE_NONE);
        assert_int_equal(execution_context_put_json(copy, "sh", json_object_new_int(2)), 0);
        assert_int_equal(execution_context_get_java_type(copy, "sh"), JAVA_TYPE_NONE);
        /* ... while the original keeps its own. */
        assert_int_equal(execution_context_get_java_type(c, "i"), JAVA_TYPE_INTEGER);

        /* Rewritten by batchd, an Integer stays an Integer and a Long a Long; the put ones get defaults. */
        java = serialize_as(copy, CONTEXT_FORMAT_JAVA);
        back = parse_ok(java);
        assert_int_equal(execution_context_get_java_type(back, "i"), JAVA_TYPE_LONG);
        assert_int_equal(execution_context_get_java_type(back, "sh"), JAVA_TYPE_LONG);
        assert_int_equal(execution_context_get_java_type(back, "i2"), JAVA_TYPE_INTEGER);
        assert_int_equal(execution_context_get_java_type(back, "l2"), JAVA_TYPE_LONG);
        assert_int_equal(execution_context_get_java_type(back, "b"), JAVA_TYPE_BYTE);
        assert_int_equal(execution_context_get_java_type(back, "c"), JAVA_TYPE_CHARACTER);
        assert_int_equal(execution_context_get_java_type(back, "f"), JAVA_TYPE_FLOAT);
        assert_int_equal(execution_context_get_java_type(back, "nan"), JAVA_TYPE_DOUBLE);

        /* A remembered class the value no longer fits falls back to the JSON type's. */
        assert_int_equal(execution_context_put_typed(copy, "x", json_object_new_int64(INT64_C(1) << 40),
                                                     JAVA_TYPE_INTEGER), 0);
        assert_int_equal(java_type_for_value(json_object_object_get(copy->object, "x"), JAVA_TYPE_INTEGER),
                         JAVA_TYPE_LONG);
        assert_int_equal(execution_context_put_typed(copy, "y", json_object_new_int(1), _JAVA_TYPE_MAX), -EINVAL);
}

/* ---- Jackson ---- */

static void test_jackson(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL, *back = NULL, *java = NULL;
        _cleanup_free_ char *s = NULL, *t = NULL, *j = NULL;

        /* Jackson2ExecutionContextStringSerializer's shape; the first four entries are the example in Spring
         * Batch's own serializer tests. */
        c = parse_ok("{\"@class\":\"java.util.HashMap\",\"object2\":\"OBJECT TWO\",\"object1\":[\"java.lang.Long\",12345],"
                     "\"object4\":1234567.1234,\"int\":7,\"big\":5000000000,\"ok\":true,"
                     "\"f\":[\"java.lang.Float\",0.1],\"nan\":[\"java.lang.Double\",\"NaN\"],"
                     "\"c\":[\"java.lang.Character\",\"x\"],\"sh\":[\"java.lang.Short\",-2],"
                     "\"by\":[\"java.lang.Byte\",3],\"n\":null}");
        assert_false(execution_context_contains(c, "@class"));
        assert_json(c, "{\"big\":5000000000,\"by\":3,\"c\":\"x\",\"f\":0.1,\"int\":7,\"n\":null,\"nan\":\"NaN\","
                       "\"object1\":12345,\"object2\":\"OBJECT TWO\",\"object4\":1234567.1234,\"ok\":true,\"sh\":-2}");
        assert_int_equal(execution_context_get_java_type(c, "object1"), JAVA_TYPE_LONG);
        assert_int_equal(execution_context_get_java_type(c, "int"), JAVA_TYPE_INTEGER);
        assert_int_equal(execution_context_get_java_type(c, "big"), JAVA_TYPE_LONG);
        assert_int_equal(execution_context_get_java_type(c, "f"), JAVA_TYPE_FLOAT);
        assert_int_equal(execution_context_get_java_type(c, "c"), JAVA_TYPE_CHARACTER);

        s = serialize_as(c, CONTEXT_FORMAT_JACKSON);
        assert_string_equal(s, "{\"@class\":\"java.util.HashMap\",\"big\":[\"java.lang.Long\",5000000000],"
                               "\"by\":[\"java.lang.Byte\",3],\"c\":[\"java.lang.Character\",\"x\"],"
                               "\"f\":[\"java.lang.Float\",0.1],\"int\":7,\"n\":null,"
                               "\"nan\":[\"java.lang.Double\",\"NaN\"],\"object1\":[\"java.lang.Long\",12345],"
                               "\"object2\":\"OBJECT TWO\",\"object4\":1234567.1234,\"ok\":true,"
                               "\"sh\":[\"java.lang.Short\",-2]}");
        back = parse_ok(s);
        t = serialize_as(back, CONTEXT_FORMAT_JACKSON);
        assert_string_equal(s, t);

        /* Through the java format and back: the same classes. */
        j = serialize_as(c, CONTEXT_FORMAT_JAVA);
        java = parse_ok(j);
        s = mfree(s);
        s = serialize_as(java, CONTEXT_FORMAT_JACKSON);
        assert_string_equal(s, t);
}

static void test_jackson_errors(void **state) {
#define E(json, r, needle) assert_parse_error(json, strlen(json), r, needle)
        E("{\"@class\":\"java.util.HashMap\",\"when\":[\"java.util.Date\",123456790123]}", -EPROTONOSUPPORT,
          "java.util.Date");
        E("{\"@class\":\"java.util.HashMap\",\"p\":{\"@class\":\"com.example.Person\",\"name\":\"Bob\"}}",
          -EPROTONOSUPPORT, "com.example.Person");
        E("{\"@class\":\"java.util.HashMap\",\"l\":[\"java.util.ArrayList\",[1,2]]}", -EPROTONOSUPPORT,
          "java.util.ArrayList");
        E("{\"@class\":\"java.util.HashMap\",\"a\":[1,2]}", -EBADMSG, "type id");
        E("{\"@class\":\"java.util.HashMap\",\"a\":[\"java.lang.Long\"]}", -EBADMSG, "type id");
        E("{\"@class\":\"java.util.HashMap\",\"a\":{}}", -EBADMSG, "type id");
        E("{\"@class\":\"java.util.HashMap\",\"a\":[\"java.lang.Long\",\"x\"]}", -EBADMSG, "java.lang.Long");
        E("{\"@class\":\"java.util.HashMap\",\"a\":[\"java.lang.Integer\",5000000000]}", -EBADMSG,
          "java.lang.Integer");
        E("{\"@class\":\"java.util.HashMap\",\"a\":[\"java.lang.Character\",\"xy\"]}", -EBADMSG,
          "java.lang.Character");
        E("{\"@class\":\"java.util.HashMap\",\"a\":[\"java.lang.Double\",\"Inf\"]}", -EBADMSG, "java.lang.Double");
        E("{\"@class\":\"java.util.HashMap\",\"a\":1", -EBADMSG, "JSON");
#undef E
}

/* ---- hostile input ---- */

static void test_not_a_context(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;

        assert_parse_error("hello", 5, -EBADMSG, "neither JSON");
        assert_parse_error("rO0A!!!!", 8, -EBADMSG, "Base64");
        assert_parse_error("rO0AB", 5, -EBADMSG, "Base64");
        assert_parse_error("{\"a\":1}\0x", 9, -EBADMSG, "NUL");
        assert_parse_error("[1]", 3, -EBADMSG, NULL);
        /* Deep nesting: refused by json-c's depth limit, in any JSON flavour. */
        {
                char deep[4096];
                size_t n = 0;

                n += (size_t) sprintf(deep, "{\"@class\":\"java.util.HashMap\",\"a\":");
                while (n < 2048)
                        deep[n++] = '[';
                deep[n] = 0;
                assert_parse_error(deep, n, -EBADMSG, "JSON");
        }
        /* Empty: an empty context, as for NULL columns. */
        assert_int_equal(execution_context_parse(NULL, 0, &c, NULL), 0);
        assert_int_equal(execution_context_size(c), 0);
        /* Java needs no padding, and whitespace around is tolerated. */
        c = execution_context_free(c);
        {
                _cleanup_free_ char *text = strdup(JDK_CONTEXT_EMPTY);

                *strchr(text, '=') = 0;
                assert_int_equal(execution_context_parse(text, strlen(text), &c, NULL), 0);
                c = execution_context_free(c);
                free(text);
                assert_true(asprintf(&text, " \n%s\n", JDK_CONTEXT_EMPTY) > 0);
                assert_int_equal(execution_context_parse(text, strlen(text), &c, NULL), 0);
        }
}

static void test_java_errors(void **state) {
        _cleanup_free_ uint8_t *bytes = NULL;
        size_t n;

        /* Another class: named. */
        assert_parse_error(JDK_CONTEXT_DATE, strlen(JDK_CONTEXT_DATE), -EPROTONOSUPPORT, "java.util.Date");

        /* Every truncation of a stream: an error, never a crash or a half context. */
        n = base64_decode(JDK_CONTEXT_ALL, &bytes);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(execution_context_freep) ExecutionContext *c = NULL;
                _cleanup_free_ char *error = NULL;

                assert_true(context_java_read(bytes, i, &c, &error) < 0);
                assert_null(c);
                assert_non_null(error);
        }
        /* Trailing bytes. */
        {
                _cleanup_free_ uint8_t *more = malloc(n + 1);
                _cleanup_free_ char *error = NULL;
                ExecutionContext *c = NULL;

                memcpy(more, bytes, n);
                more[n] = 0x70; /* TC_NULL */
                assert_int_equal(context_java_read(more, n + 1, &c, &error), -EBADMSG);
                assert_non_null(strstr(error, "after the HashMap"));
        }
        /* Every single flipped byte: a clean result either way. */
        for (size_t i = 0; i < n; i++)
                for (unsigned bit = 0; bit < 8; bit++) {
                        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;
                        _cleanup_free_ char *error = NULL;
                        int r;

                        bytes[i] ^= (uint8_t) (1u << bit);
                        r = context_java_read(bytes, n, &c, &error);
                        assert_true(r < 0 ? !c && error : c && !error);
                        bytes[i] ^= (uint8_t) (1u << bit);
                }
}

/* Random multi-byte damage of every JDK vector, from a fixed seed: a clean result either way, no crash, no
 * leak (the sanitizer build checks that). */
static void test_java_random_damage(void **state) {
        const char *vectors[] = { JDK_CONTEXT_SCALARS, JDK_CONTEXT_ALL, JDK_CONTEXT_SPRING, JDK_CONTEXT_SHARED,
                                  JDK_CONTEXT_MANY, JDK_CONTEXT_DATE };
        uint64_t seed = 0x9E3779B97F4A7C15;

        for (size_t v = 0; v < ELEMENTSOF(vectors); v++) {
                _cleanup_free_ uint8_t *bytes = NULL, *work = NULL;
                size_t n = base64_decode(vectors[v], &bytes);

                work = malloc(n + 16);
                assert_non_null(work);
                for (unsigned round = 0; round < 3000; round++) {
                        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;
                        _cleanup_free_ char *error = NULL;
                        size_t m = n;
                        int r;

                        memcpy(work, bytes, n);
                        for (unsigned k = 0; k < 1 + round % 4; k++) {
                                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                                size_t at = (size_t) (seed >> 33) % m;
                                uint8_t b = (uint8_t) (seed >> 17);

                                switch ((seed >> 8) % 3) {
                                case 0: /* overwrite, often with a stream constant */
                                        work[at] = (seed >> 12) % 2 ? b : (uint8_t) (0x70 + b % 15);
                                        break;
                                case 1: /* cut */
                                        m = at + 1;
                                        break;
                                default: /* length fields grow */
                                        work[at] = 0xFF;
                                }
                        }
                        r = context_java_read(work, m, &c, &error);
                        assert_true(r < 0 ? !c && error : c && !error);
                }
        }
}

/* A hand-made stream: the HashMap header of the JDK's empty map with its size and then body appended. */
static int read_crafted(const uint8_t *body, size_t body_size, uint32_t size, char **ret_error) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;
        _cleanup_free_ uint8_t *header = NULL, *all = NULL;
        size_t n;
        int r;

        n = base64_decode(JDK_CONTEXT_EMPTY, &header);
        /* The empty map ends with its size (4 bytes) and TC_ENDBLOCKDATA. */
        n -= 5;
        all = malloc(n + 4 + body_size);
        assert_non_null(all);
        memcpy(all, header, n);
        all[n] = (uint8_t) (size >> 24), all[n + 1] = (uint8_t) (size >> 16);
        all[n + 2] = (uint8_t) (size >> 8), all[n + 3] = (uint8_t) size;
        memcpy(all + n + 4, body, body_size);
        r = context_java_read(all, n + 4 + body_size, &c, ret_error);
        assert_true(r < 0 ? !c : !!c);
        return r;
}

#define CRAFTED(size, r, needle, ...)                                                   \
        do {                                                                            \
                const uint8_t _b[] = { __VA_ARGS__ };                                   \
                _cleanup_free_ char *_e = NULL;                                         \
                assert_int_equal(read_crafted(_b, sizeof(_b), (size), &_e), (r));       \
                if (r < 0 && !strstr(_e, (needle)))                                     \
                        fail_msg("error '%s' lacks '%s'", _e, (needle));                \
        } while (0)

static void test_java_crafted(void **state) {
        /* A well-formed entry, as a check of the crafting itself. */
        CRAFTED(1, 0, "", 0x74, 0, 1, 'k', 0x74, 0, 1, 'v', 0x78);
        /* A size far beyond the data: truncation, without allocating for the count. */
        CRAFTED(0x7FFFFFFF, -EBADMSG, "truncated", 0x74, 0, 1, 'k', 0x70);
        CRAFTED(0x80000000, -EBADMSG, "negative", 0x78);
        /* Fewer entries than the data holds. */
        CRAFTED(0, -EBADMSG, "more HashMap data", 0x74, 0, 1, 'k', 0x70, 0x78);
        /* Huge string lengths. */
        CRAFTED(1, -EBADMSG, "truncated", 0x74, 0xFF, 0xFF, 'k');
        CRAFTED(1, -EBADMSG, "truncated", 0x7C, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 'k');
        CRAFTED(1, -EBADMSG, "truncated", 0x7C, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 'k');
        /* Malformed modified UTF-8: a lone surrogate, a raw NUL, a cut sequence. */
        CRAFTED(1, -EBADMSG, "malformed string", 0x74, 0, 3, 0xED, 0xA0, 0xBD, 0x70, 0x78);
        CRAFTED(1, -EBADMSG, "malformed string", 0x74, 0, 1, 0x00, 0x70, 0x78);
        CRAFTED(1, -EBADMSG, "malformed string", 0x74, 0, 2, 0xE0, 0x80, 0x70, 0x78);
        /* A key containing U+0000, a key that is not a String, a null key. */
        CRAFTED(1, -EBADMSG, "U+0000", 0x74, 0, 2, 0xC0, 0x80, 0x70, 0x78);
        CRAFTED(1, -EBADMSG, "not a String", 0x70, 0x70, 0x78);
        /* References: to nothing, to the map itself (as a value), to the class descriptor as a value. */
        CRAFTED(1, -EBADMSG, "unknown handle", 0x74, 0, 1, 'k', 0x71, 0x00, 0x7E, 0x00, 0x09, 0x78);
        CRAFTED(1, -EPROTONOSUPPORT, "inside itself", 0x74, 0, 1, 'k', 0x71, 0x00, 0x7E, 0x00, 0x01, 0x78);
        CRAFTED(1, -EBADMSG, "wrong kind", 0x74, 0, 1, 'k', 0x71, 0x00, 0x7E, 0x00, 0x00, 0x78);
        CRAFTED(1, -EBADMSG, "unknown handle", 0x74, 0, 1, 'k', 0x71, 0xFF, 0xFF, 0xFF, 0xFF, 0x78);
        /* A nested HashMap, by reference to its class descriptor. */
        CRAFTED(1, -EPROTONOSUPPORT, "nested java.util.HashMap", 0x74, 0, 1, 'k', 0x73, 0x71, 0x00, 0x7E, 0x00,
                0x00, 0x78);
        /* Elements batchd does not read: arrays, enums, classes, proxies, resets. */
        CRAFTED(1, -EPROTONOSUPPORT, "array", 0x74, 0, 1, 'k', 0x75, 0x78);
        CRAFTED(1, -EPROTONOSUPPORT, "enum", 0x74, 0, 1, 'k', 0x7E, 0x78);
        CRAFTED(1, -EPROTONOSUPPORT, "java.lang.Class", 0x74, 0, 1, 'k', 0x76, 0x78);
        CRAFTED(1, -EPROTONOSUPPORT, "proxy", 0x74, 0, 1, 'k', 0x73, 0x7D, 0x78);
        CRAFTED(1, -EBADMSG, "0x79", 0x74, 0, 1, 'k', 0x79, 0x78);
        /* A Long whose descriptor lies about its serialVersionUID or its field. */
        CRAFTED(1, -EBADMSG, "unlike the JDK", 0x74, 0, 1, 'k', 0x73, 0x72, 0, 14, 'j', 'a', 'v', 'a', '.', 'l',
                'a', 'n', 'g', '.', 'L', 'o', 'n', 'g', 0, 0, 0, 0, 0, 0, 0, 1, 0x02, 0, 1, 'J', 0, 5, 'v', 'a',
                'l', 'u', 'e', 0x78, 0x70, 0, 0, 0, 0, 0, 0, 0, 1, 0x78);
        CRAFTED(1, -EBADMSG, "unexpected field", 0x74, 0, 1, 'k', 0x73, 0x72, 0, 14, 'j', 'a', 'v', 'a', '.',
                'l', 'a', 'n', 'g', '.', 'L', 'o', 'n', 'g', 0x3b, 0x8b, 0xe4, 0x90, 0xcc, 0x8f, 0x23, 0xdf, 0x02,
                0, 1, 'I', 0, 5, 'v', 'a', 'l', 'u', 'e', 0x78, 0x70, 0, 0, 0, 1, 0x78);
        /* A Long without java.lang.Number above it. */
        CRAFTED(1, -EBADMSG, "superclass", 0x74, 0, 1, 'k', 0x73, 0x72, 0, 14, 'j', 'a', 'v', 'a', '.', 'l',
                'a', 'n', 'g', '.', 'L', 'o', 'n', 'g', 0x3b, 0x8b, 0xe4, 0x90, 0xcc, 0x8f, 0x23, 0xdf, 0x02, 0,
                1, 'J', 0, 5, 'v', 'a', 'l', 'u', 'e', 0x78, 0x70, 0, 0, 0, 0, 0, 0, 0, 1, 0x78);
        /* A Long whose superclass is a Long whose superclass is ...: refused at a small depth. */
        {
                static const uint8_t desc[] = { 0x72, 0, 14, 'j', 'a', 'v', 'a', '.', 'l', 'a', 'n', 'g', '.',
                                                'L', 'o', 'n', 'g', 0x3b, 0x8b, 0xe4, 0x90, 0xcc, 0x8f, 0x23,
                                                0xdf, 0x02, 0, 1, 'J', 0, 5, 'v', 'a', 'l', 'u', 'e', 0x78 };
                _cleanup_free_ uint8_t *body = malloc(5 + 10000 * sizeof(desc));
                _cleanup_free_ char *e = NULL;
                size_t n = 0;

                assert_non_null(body);
                memcpy(body, (uint8_t[]) { 0x74, 0, 1, 'k', 0x73 }, 5), n = 5;
                for (size_t i = 0; i < 10000; i++, n += sizeof(desc))
                        memcpy(body + n, desc, sizeof(desc));
                assert_int_equal(read_crafted(body, n, 1, &e), -EBADMSG);
                assert_non_null(strstr(e, "too deeply"));
        }
        /* A Long descriptor that names itself as its superclass. */
        CRAFTED(1, -EBADMSG, "its own superclass", 0x74, 0, 1, 'k', 0x73, 0x72, 0, 14, 'j', 'a', 'v', 'a', '.',
                'l', 'a', 'n', 'g', '.', 'L', 'o', 'n', 'g', 0x3b, 0x8b, 0xe4, 0x90, 0xcc, 0x8f, 0x23, 0xdf, 0x02,
                0, 1, 'J', 0, 5, 'v', 'a', 'l', 'u', 'e', 0x78, 0x71, 0x00, 0x7E, 0x00, 0x03, 0, 0, 0, 0, 0, 0,
                0, 1, 0x78);
        /* A class outside the list, named. */
        CRAFTED(1, -EPROTONOSUPPORT, "com.example.Evil", 0x74, 0, 1, 'k', 0x73, 0x72, 0, 16, 'c', 'o', 'm', '.',
                'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'E', 'v', 'i', 'l', 0, 0, 0, 0, 0, 0, 0, 1, 0x02, 0, 0,
                0x78, 0x70, 0x78);
}

/* ---- writing ---- */

static void test_write_errors(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;
        _cleanup_free_ char *s = NULL, *error = NULL;

        c = parse_ok("{\"nested\":{\"a\":1}}");
        assert_int_equal(execution_context_serialize_as(c, CONTEXT_FORMAT_JAVA, &s, &error), -EINVAL);
        assert_non_null(strstr(error, "'nested'"));
        error = mfree(error);
        assert_int_equal(execution_context_serialize_as(c, CONTEXT_FORMAT_JACKSON, &s, &error), -EINVAL);
        assert_non_null(strstr(error, "'nested'"));
        error = mfree(error);
        /* Plain JSON holds it as it always did. */
        s = serialize_as(c, CONTEXT_FORMAT_JSON);
        assert_string_equal(s, "{\"nested\":{\"a\":1}}");
        s = mfree(s);

        c = execution_context_free(c);
        assert_int_equal(execution_context_new(&c), 0);
        assert_int_equal(execution_context_put_string(c, "@class", "x"), 0);
        assert_int_equal(execution_context_serialize_as(c, CONTEXT_FORMAT_JACKSON, &s, &error), -EINVAL);
        assert_non_null(strstr(error, "@class"));
        /* In plain JSON a "@class" key is just a key, read back as such. */
        s = serialize_as(c, CONTEXT_FORMAT_JSON);
        execution_context_free(parse_ok(s));
}

static void test_write_long_strings(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL, *back = NULL;
        _cleanup_free_ char *big = NULL, *s = NULL, *v = NULL;
        _cleanup_free_ uint8_t *bytes = NULL;
        size_t n;

        /* Past 65535 bytes of modified UTF-8 a string is a TC_LONGSTRING. */
        big = malloc(70001);
        memset(big, 'y', 70000);
        big[70000] = 0;
        assert_int_equal(execution_context_new(&c), 0);
        assert_int_equal(execution_context_put_string(c, "big", big), 0);
        assert_int_equal(execution_context_put_string(c, "utf", "\xf0\x9f\x98\x80 é"), 0);
        s = serialize_as(c, CONTEXT_FORMAT_JAVA);
        n = base64_decode(s, &bytes);
        assert_non_null(memmem(bytes, n, "\x7c\x00\x00\x00\x00\x00\x01\x11\x70", 9));
        back = parse_ok(s);
        assert_int_equal(execution_context_get_string(back, "big", &v), 0);
        assert_string_equal(v, big);
        v = mfree(v);
        assert_int_equal(execution_context_get_string(back, "utf", &v), 0);
        assert_string_equal(v, "\xf0\x9f\x98\x80 é");
}

static void test_format_names(void **state) {
        assert_int_equal(context_format_from_string("json"), CONTEXT_FORMAT_JSON);
        assert_int_equal(context_format_from_string("java"), CONTEXT_FORMAT_JAVA);
        assert_int_equal(context_format_from_string("jackson"), CONTEXT_FORMAT_JACKSON);
        assert_int_equal(context_format_from_string("xml"), -EINVAL);
        assert_int_equal(context_format_from_string(NULL), -EINVAL);
        assert_string_equal(context_format_to_string(CONTEXT_FORMAT_JAVA), "java");
        assert_null(context_format_to_string(_CONTEXT_FORMAT_MAX));

        assert_int_equal(context_format_detect("  {}", 4), CONTEXT_FORMAT_JSON);
        assert_int_equal(context_format_detect("{ \"@class\":1}", 13), CONTEXT_FORMAT_JACKSON);
        assert_int_equal(context_format_detect("rO0ABXNy", 8), CONTEXT_FORMAT_JAVA);
        assert_int_equal(context_format_detect("rO0", 3), -EBADMSG);
        assert_int_equal(context_format_detect("", 0), -EBADMSG);

        assert_string_equal(java_type_to_class(JAVA_TYPE_LONG), "java.lang.Long");
        assert_int_equal(java_type_from_class("java.lang.Character"), JAVA_TYPE_CHARACTER);
        assert_int_equal(java_type_from_class("java.lang.Object"), JAVA_TYPE_NONE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_java_read_scalars),
                cmocka_unit_test(test_java_read_all_types),
                cmocka_unit_test(test_java_read_spring_and_references),
                cmocka_unit_test(test_java_write_matches_jdk),
                cmocka_unit_test(test_default_types),
                cmocka_unit_test(test_type_memory),
                cmocka_unit_test(test_jackson),
                cmocka_unit_test(test_jackson_errors),
                cmocka_unit_test(test_not_a_context),
                cmocka_unit_test(test_java_errors),
                cmocka_unit_test(test_java_random_damage),
                cmocka_unit_test(test_java_crafted),
                cmocka_unit_test(test_write_errors),
                cmocka_unit_test(test_write_long_strings),
                cmocka_unit_test(test_format_names),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
