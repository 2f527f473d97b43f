/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <openssl/evp.h>

#include "context-format.h"
#include "context-jackson.h"
#include "context-java.h"

static const char *const context_format_table[_CONTEXT_FORMAT_MAX] = {
        [CONTEXT_FORMAT_JSON]    = "json",
        [CONTEXT_FORMAT_JAVA]    = "java",
        [CONTEXT_FORMAT_JACKSON] = "jackson",
};

const char *context_format_to_string(ContextFormat f) {
        return f >= 0 && f < _CONTEXT_FORMAT_MAX ? context_format_table[f] : NULL;
}

ContextFormat context_format_from_string(const char *s) {
        for (ContextFormat f = 0; s && f < _CONTEXT_FORMAT_MAX; f++)
                if (streq(s, context_format_table[f]))
                        return f;
        return _CONTEXT_FORMAT_INVALID;
}

static const char *const java_class_table[_JAVA_TYPE_MAX] = {
        [JAVA_TYPE_STRING]    = "java.lang.String",
        [JAVA_TYPE_INTEGER]   = "java.lang.Integer",
        [JAVA_TYPE_LONG]      = "java.lang.Long",
        [JAVA_TYPE_SHORT]     = "java.lang.Short",
        [JAVA_TYPE_BYTE]      = "java.lang.Byte",
        [JAVA_TYPE_DOUBLE]    = "java.lang.Double",
        [JAVA_TYPE_FLOAT]     = "java.lang.Float",
        [JAVA_TYPE_BOOLEAN]   = "java.lang.Boolean",
        [JAVA_TYPE_CHARACTER] = "java.lang.Character",
};

const char *java_type_to_class(JavaType t) {
        return t > JAVA_TYPE_NONE && t < _JAVA_TYPE_MAX ? java_class_table[t] : NULL;
}

JavaType java_type_from_class(const char *name) {
        for (JavaType t = JAVA_TYPE_NONE + 1; name && t < _JAVA_TYPE_MAX; t++)
                if (streq(name, java_class_table[t]))
                        return t;
        return JAVA_TYPE_NONE;
}

int context_error(char **ret_error, int r, const char *format, ...) {
        va_list ap;

        if (ret_error) {
                free(*ret_error);
                va_start(ap, format);
                if (vasprintf(ret_error, format, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

json_object *context_json_new_double(double d, bool is_float) {
        char buf[64];

        if (!isfinite(d))
                return NULL;

        /* The shortest of %.1g .. %.17g that reads back as the same double (or float): Java's own
         * Double.toString()/Float.toString() promise the same, so Spring and batchd show one number. */
        for (int p = 1; p <= 17; p++) {
                double back;

                snprintf(buf, sizeof(buf) - 2, "%.*g", p, d);
                back = strtod(buf, NULL);
                if (is_float ? (float) back == (float) d : back == d)
                        break;
        }
        /* A double must stay a double: "2" would be read back as an integer, by json-c and by Jackson. */
        if (!strpbrk(buf, ".eEn"))
                strcat(buf, ".0");

        return json_object_new_double_s(d, buf);
}

static bool is_non_finite_name(const char *s) {
        return streq(s, "NaN") || streq(s, "Infinity") || streq(s, "-Infinity");
}

JavaType java_type_for_value(json_object *v, JavaType remembered) {
        json_type type = json_object_get_type(v);
        int64_t i = type == json_type_int ? json_object_get_int64(v) : 0;

        switch (remembered) {
        case JAVA_TYPE_STRING:
                if (type == json_type_string)
                        return remembered;
                break;
        case JAVA_TYPE_CHARACTER: {
                const uint8_t *s = (const uint8_t *) json_object_get_string(v);

                /* One UTF-16 unit: a single code point below U+10000, 1 to 3 bytes of UTF-8. */
                if (type == json_type_string && json_object_get_string_len(v) > 0 &&
                    ((s[0] < 0x80 && json_object_get_string_len(v) == 1) ||
                     ((s[0] & 0xE0) == 0xC0 && json_object_get_string_len(v) == 2) ||
                     ((s[0] & 0xF0) == 0xE0 && json_object_get_string_len(v) == 3 && !(s[0] == 0xED && s[1] >= 0xA0))))
                        return remembered;
                break;
        }
        case JAVA_TYPE_INTEGER:
                if (type == json_type_int && i >= INT32_MIN && i <= INT32_MAX)
                        return remembered;
                break;
        case JAVA_TYPE_SHORT:
                if (type == json_type_int && i >= INT16_MIN && i <= INT16_MAX)
                        return remembered;
                break;
        case JAVA_TYPE_BYTE:
                if (type == json_type_int && i >= INT8_MIN && i <= INT8_MAX)
                        return remembered;
                break;
        case JAVA_TYPE_LONG:
                if (type == json_type_int)
                        return remembered;
                break;
        case JAVA_TYPE_DOUBLE:
        case JAVA_TYPE_FLOAT:
                if (type == json_type_int || type == json_type_double ||
                    (type == json_type_string && is_non_finite_name(json_object_get_string(v))))
                        return remembered;
                break;
        case JAVA_TYPE_BOOLEAN:
                if (type == json_type_boolean)
                        return remembered;
                break;
        default:
                break;
        }

        switch (type) {
        case json_type_string:
                return JAVA_TYPE_STRING;
        case json_type_int:
                return JAVA_TYPE_LONG;
        case json_type_double:
                return JAVA_TYPE_DOUBLE;
        case json_type_boolean:
                return JAVA_TYPE_BOOLEAN;
        default:
                return JAVA_TYPE_NONE;
        }
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

ContextFormat context_format_detect(const char *text, size_t size) {
        size_t i = 0;

        while (i < size && is_space(text[i]))
                i++;
        if (i < size && text[i] == '{') {
                /* Jackson writes the map's type id first. */
                for (i++; i < size && is_space(text[i]); i++)
                        ;
                if (size - i >= 8 && memcmp(text + i, "\"@class\"", 8) == 0)
                        return CONTEXT_FORMAT_JACKSON;
                return CONTEXT_FORMAT_JSON;
        }
        /* Base64 of the stream header AC ED 00 05. */
        if (size - i >= 4 && memcmp(text + i, "rO0A", 4) == 0)
                return CONTEXT_FORMAT_JAVA;
        return -EBADMSG;
}

static bool is_base64_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* java.util.Base64's basic decoder: the standard alphabet, no line breaks, padding optional. */
static int base64_decode(const char *text, size_t size, uint8_t **ret, size_t *ret_size, char **ret_error) {
        _cleanup_free_ uint8_t *out = NULL;
        _cleanup_free_ char *padded = NULL;
        size_t pad = 0, n;
        int k;

        while (size > 0 && is_space(text[size - 1]))
                size--;
        while (pad < 2 && size > 0 && text[size - 1] == '=')
                size--, pad++;
        for (size_t i = 0; i < size; i++)
                if (!is_base64_char(text[i]))
                        return context_error(ret_error, -EBADMSG,
                                             "Java serialized context is not Base64 (byte %zu).", i);
        if (size % 4 == 1 || (pad > 0 && (size + pad) % 4 != 0) || size > INT_MAX / 2)
                return context_error(ret_error, -EBADMSG, "Java serialized context has a broken Base64 length.");

        /* EVP_DecodeBlock() wants whole quads; put the padding back, then take its zero bytes off again. */
        pad = (4 - size % 4) % 4;
        padded = malloc(size + pad + 1);
        out = malloc((size + pad) / 4 * 3 + 1);
        if (!padded || !out)
                return -ENOMEM;
        memcpy(padded, text, size);
        memset(padded + size, '=', pad);
        padded[size + pad] = 0;

        k = EVP_DecodeBlock(out, (const unsigned char *) padded, (int) (size + pad));
        if (k < 0 || (size_t) k < pad)
                return context_error(ret_error, -EBADMSG, "Java serialized context is not Base64.");
        n = (size_t) k - pad;

        *ret = TAKE_PTR(out);
        *ret_size = n;
        return 0;
}

static bool is_jackson_map(const ExecutionContext *c) {
        _cleanup_free_ char *v = NULL;

        return execution_context_get_string(c, "@class", &v) >= 0 && streq(v, "java.util.HashMap");
}

int execution_context_parse(const char *text, size_t size, ExecutionContext **ret, char **ret_error) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;
        _cleanup_free_ char *copy = NULL;
        ContextFormat f;
        int k;

        assert(ret);

        if (!text || size == 0)
                return execution_context_new(ret);

        f = context_format_detect(text, size);
        if (f < 0)
                return context_error(ret_error, -EBADMSG, "Execution context is neither JSON nor a Base64 Java "
                                     "serialized map (it starts with neither '{' nor 'rO0A').");

        if (f == CONTEXT_FORMAT_JAVA) {
                _cleanup_free_ uint8_t *bytes = NULL;
                size_t n = 0, skip = 0;

                while (is_space(text[skip]))
                        skip++;
                k = base64_decode(text + skip, size - skip, &bytes, &n, ret_error);
                if (k < 0)
                        return k;
                return context_java_read(bytes, n, ret, ret_error);
        }

        if (memchr(text, 0, size))
                return context_error(ret_error, -EBADMSG, "Execution context contains a NUL byte.");
        copy = strndup(text, size);
        if (!copy)
                return -ENOMEM;
        k = execution_context_deserialize(copy, &c);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return context_error(ret_error, -EBADMSG, "Execution context is not a valid JSON object.");

        /* Jackson's map carries its class. A step could PUT a key "@class" into batchd's plain JSON too, but
         * not with Jackson's value for it as well, and the jackson writer refuses such a key. */
        if (is_jackson_map(c)) {
                k = context_jackson_convert(c, ret_error);
                if (k < 0)
                        return k;
        }

        *ret = TAKE_PTR(c);
        return 0;
}

int execution_context_serialize_as(const ExecutionContext *c, ContextFormat f, char **ret, char **ret_error) {
        _cleanup_free_ uint8_t *bytes = NULL;
        size_t n = 0;
        char *text;
        int k;

        assert(c);
        assert(ret);

        switch (f) {
        case CONTEXT_FORMAT_JSON:
                return execution_context_serialize(c, ret);
        case CONTEXT_FORMAT_JACKSON:
                return context_jackson_write(c, ret, ret_error);
        case CONTEXT_FORMAT_JAVA:
                k = context_java_write(c, &bytes, &n, ret_error);
                if (k < 0)
                        return k;
                if (n > INT_MAX / 4 * 3)
                        return context_error(ret_error, -E2BIG, "Execution context too large for Base64.");
                text = malloc((n + 2) / 3 * 4 + 1);
                if (!text)
                        return -ENOMEM;
                (void) EVP_EncodeBlock((unsigned char *) text, bytes, (int) n);
                *ret = text;
                return 0;
        default:
                return -EINVAL;
        }
}
