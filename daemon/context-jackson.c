/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>

#include "context-format.h"
#include "context-jackson.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define TYPE_KEY "@class"
#define MAP_CLASS "java.util.HashMap"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

static bool is_non_finite(const char *s) {
        return streq(s, "NaN") || streq(s, "Infinity") || streq(s, "-Infinity");
}

/* A [class, value] pair: the value as batchd keeps it (a new reference), or an error naming the class. */
static int convert_typed(const char *key, json_object *pair, json_object **ret, JavaType *ret_type, char **ret_error) {
        json_object *name = json_object_array_get_idx(pair, 0), *v = json_object_array_get_idx(pair, 1);
        json_type vt = json_object_get_type(v);
        const char *class;
        JavaType t;

        class = json_object_get_string(name);
        t = java_type_from_class(class);

        switch (t) {
        case JAVA_TYPE_STRING:
                if (vt != json_type_string)
                        goto bad;
                break;
        case JAVA_TYPE_CHARACTER:
                if (vt != json_type_string || java_type_for_value(v, t) != t)
                        goto bad;
                break;
        case JAVA_TYPE_LONG:
        case JAVA_TYPE_INTEGER:
        case JAVA_TYPE_SHORT:
        case JAVA_TYPE_BYTE:
                if (vt != json_type_int || java_type_for_value(v, t) != t)
                        goto bad;
                break;
        case JAVA_TYPE_DOUBLE:
        case JAVA_TYPE_FLOAT:
                if (vt == json_type_string && is_non_finite(json_object_get_string(v)))
                        break;
                if (vt != json_type_int && vt != json_type_double)
                        goto bad;
                break;
        case JAVA_TYPE_BOOLEAN:
                if (vt != json_type_boolean)
                        goto bad;
                break;
        default:
                return context_error(ret_error, -EPROTONOSUPPORT,
                                     "Jackson context value of '%s' is a %s, which batchd cannot read (only String, "
                                     "Integer, Long, Short, Byte, Double, Float, Boolean and Character).",
                                     key, class);
        }

        *ret = json_object_get(v);
        *ret_type = t;
        return 0;

bad:
        return context_error(ret_error, -EBADMSG, "Jackson context value of '%s' is not a valid %s.", key, class);
}

int context_jackson_convert(ExecutionContext *c, char **ret_error) {
        _cleanup_strv_free_ char **keys = NULL;
        _cleanup_free_ char *class = NULL;
        int k;

        assert(c);

        k = execution_context_get_string(c, TYPE_KEY, &class);
        if (k < 0)
                return context_error(ret_error, -EBADMSG, "Jackson context has no \"" TYPE_KEY "\".");
        if (!streq(class, MAP_CLASS))
                return context_error(ret_error, -EPROTONOSUPPORT,
                                     "Jackson context is a %s, not a " MAP_CLASS ".", class);
        (void) execution_context_remove(c, TYPE_KEY);

        k = execution_context_keys(c, &keys);
        if (k < 0)
                return k;

        for (char **key = keys; *key; key++) {
                json_object *v = json_object_object_get(c->object, *key), *value = NULL;
                JavaType t = JAVA_TYPE_NONE;

                switch (json_object_get_type(v)) {
                case json_type_null:
                        continue;
                case json_type_string:
                        t = JAVA_TYPE_STRING;
                        break;
                case json_type_boolean:
                        t = JAVA_TYPE_BOOLEAN;
                        break;
                case json_type_double:
                        t = JAVA_TYPE_DOUBLE;
                        break;
                case json_type_int: {
                        /* Jackson reads an untyped integer as Integer when it fits, else Long. */
                        int64_t i = json_object_get_int64(v);

                        t = i >= INT32_MIN && i <= INT32_MAX ? JAVA_TYPE_INTEGER : JAVA_TYPE_LONG;
                        break;
                }
                case json_type_array:
                        if (json_object_array_length(v) != 2 ||
                            !json_object_is_type(json_object_array_get_idx(v, 0), json_type_string))
                                return context_error(ret_error, -EBADMSG,
                                                     "Jackson context value of '%s' is an array without a type id.",
                                                     *key);
                        k = convert_typed(*key, v, &value, &t, ret_error);
                        if (k < 0)
                                return k;
                        break;
                case json_type_object: {
                        json_object *id = json_object_object_get(v, TYPE_KEY);

                        if (json_object_is_type(id, json_type_string))
                                return context_error(ret_error, -EPROTONOSUPPORT,
                                                     "Jackson context value of '%s' is a %s, which batchd cannot read.",
                                                     *key, json_object_get_string(id));
                        return context_error(ret_error, -EBADMSG,
                                             "Jackson context value of '%s' is an object without a type id.", *key);
                }
                }

                if (!value)
                        value = json_object_get(v);
                k = execution_context_put_typed(c, *key, value, t);
                if (k < 0)
                        return k;
        }
        return 0;
}

static int write_string(FILE *f, const char *s, size_t n) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *text;

        /* json-c does the escaping; Jackson reads all of it. */
        o = json_object_new_string_len(s, (int) n);
        if (!o)
                return -ENOMEM;
        text = json_object_to_json_string_ext(o, JSON_FLAGS);
        if (!text)
                return -ENOMEM;
        fputs(text, f);
        return 0;
}

static int write_number(FILE *f, json_object *v, bool is_float) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        double d;

        if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);

                d = streq(s, "NaN") ? NAN : streq(s, "Infinity") ? INFINITY : -INFINITY;
        } else
                d = json_object_get_double(v);

        /* Jackson's spelling of what JSON cannot write as a number. */
        if (isnan(d))
                fputs("\"NaN\"", f);
        else if (isinf(d))
                fputs(d > 0 ? "\"Infinity\"" : "\"-Infinity\"", f);
        else {
                o = context_json_new_double(d, is_float);
                if (!o)
                        return -ENOMEM;
                fputs(json_object_to_json_string_ext(o, JSON_FLAGS), f);
        }
        return 0;
}

static int write_value(FILE *f, const char *key, json_object *v, JavaType remembered, char **ret_error) {
        JavaType t;

        if (!v) {
                fputs("null", f);
                return 0;
        }

        t = java_type_for_value(v, remembered);
        switch (t) {
        case JAVA_TYPE_STRING:
                return write_string(f, json_object_get_string(v), (size_t) json_object_get_string_len(v));
        case JAVA_TYPE_BOOLEAN:
                fputs(json_object_get_boolean(v) ? "true" : "false", f);
                return 0;
        case JAVA_TYPE_INTEGER:
                /* Integer is one of Jackson's natural types: no type id. */
                fprintf(f, "%" PRIi64, json_object_get_int64(v));
                return 0;
        case JAVA_TYPE_LONG:
        case JAVA_TYPE_SHORT:
        case JAVA_TYPE_BYTE:
                fprintf(f, "[\"%s\",%" PRIi64 "]", java_type_to_class(t), json_object_get_int64(v));
                return 0;
        case JAVA_TYPE_DOUBLE: {
                /* Double is natural too, except that JSON has no NaN: Jackson then adds the type id. */
                bool finite = !json_object_is_type(v, json_type_string) && isfinite(json_object_get_double(v));
                int k;

                if (!finite)
                        fprintf(f, "[\"%s\",", java_type_to_class(t));
                k = write_number(f, v, false);
                if (!finite)
                        fputc(']', f);
                return k;
        }
        case JAVA_TYPE_FLOAT: {
                int k;

                fprintf(f, "[\"%s\",", java_type_to_class(t));
                k = write_number(f, v, true);
                fputc(']', f);
                return k;
        }
        case JAVA_TYPE_CHARACTER: {
                int k;

                fprintf(f, "[\"%s\",", java_type_to_class(t));
                k = write_string(f, json_object_get_string(v), (size_t) json_object_get_string_len(v));
                fputc(']', f);
                return k;
        }
        default:
                return context_error(ret_error, -EINVAL,
                                     "Context value of '%s' is a JSON %s, which a Jackson context "
                                     "(java.lang.String, Long, Double, Boolean, ...) cannot hold.",
                                     key, json_type_to_name(json_object_get_type(v)));
        }
}

int context_jackson_write(const ExecutionContext *c, char **ret, char **ret_error) {
        _cleanup_strv_free_ char **keys = NULL;
        _cleanup_free_ char *buf = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t sz = 0;
        int k;

        assert(c);
        assert(ret);

        k = execution_context_keys(c, &keys);
        if (k < 0)
                return k;

        f = open_memstream(&buf, &sz);
        if (!f)
                return -ENOMEM;

        fputs("{\"" TYPE_KEY "\":\"" MAP_CLASS "\"", f);
        for (char **key = keys; *key; key++) {
                if (streq(*key, TYPE_KEY))
                        return context_error(ret_error, -EINVAL,
                                             "Context key '" TYPE_KEY "' cannot be written in the Jackson format, "
                                             "where it names the map's class.");
                fputc(',', f);
                k = write_string(f, *key, strlen(*key));
                if (k < 0)
                        return k;
                fputc(':', f);
                k = write_value(f, *key, json_object_object_get(c->object, *key),
                                execution_context_get_java_type(c, *key), ret_error);
                if (k < 0)
                        return k;
        }
        fputc('}', f);

        k = fclose(TAKE_PTR(f));
        if (k != 0 || !buf)
                return -ENOMEM;

        *ret = TAKE_PTR(buf);
        return 0;
}
