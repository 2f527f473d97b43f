/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <limits.h>

#include "execution-context.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

static int execution_context_new_take(json_object *o, ExecutionContext **ret) {
        ExecutionContext *c;

        c = calloc(1, sizeof(ExecutionContext));
        if (!c) {
                json_object_put(o);
                return -ENOMEM;
        }
        c->object = o;
        *ret = c;
        return 0;
}

int execution_context_new(ExecutionContext **ret) {
        json_object *o;

        if (!ret)
                return -EINVAL;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;

        return execution_context_new_take(o, ret);
}

ExecutionContext *execution_context_free(ExecutionContext *c) {
        if (!c)
                return NULL;

        json_object_put(c->object);
        json_object_put(c->java_types);
        return mfree(c);
}

int execution_context_copy(const ExecutionContext *c, ExecutionContext **ret) {
        _cleanup_(json_object_putp) json_object *types = NULL;
        json_object *o = NULL;
        int r;

        if (!c || !ret)
                return -EINVAL;

        if (c->java_types && json_object_deep_copy(c->java_types, &types, NULL) < 0)
                return -ENOMEM;
        if (json_object_deep_copy(c->object, &o, NULL) < 0)
                return -ENOMEM;

        r = execution_context_new_take(o, ret);
        if (r < 0)
                return r;
        (*ret)->java_types = TAKE_PTR(types);
        return 0;
}

int execution_context_share(const ExecutionContext *c, ExecutionContext **ret) {
        int r;

        if (!c || !ret)
                return -EINVAL;

        r = execution_context_new_take(json_object_get(c->object), ret);
        if (r < 0)
                return r;
        /* The Java classes of the values are part of the context: a shared one writes them back the same. */
        (*ret)->java_types = json_object_get(c->java_types);
        return 0;
}

size_t execution_context_size(const ExecutionContext *c) {
        if (!c)
                return 0;
        return (size_t) json_object_object_length(c->object);
}

bool execution_context_contains(const ExecutionContext *c, const char *key) {
        if (!c || !key)
                return false;
        return json_object_object_get_ex(c->object, key, NULL);
}

int execution_context_put_json(ExecutionContext *c, const char *key, json_object *value) {
        if (!c || !key) {
                json_object_put(value);
                return -EINVAL;
        }

        /* json_object_object_add() releases a value it replaces, and on failure the caller still owns
         * value: drop it so that ownership passes here in every case. */
        if (json_object_object_add(c->object, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        /* A new value has no Java class until execution_context_put_typed() gives it one. */
        if (c->java_types)
                json_object_object_del(c->java_types, key);
        return 0;
}

int execution_context_put_typed(ExecutionContext *c, const char *key, json_object *value, JavaType type) {
        json_object *t;
        int r;

        if (!c || !key || type < 0 || type >= _JAVA_TYPE_MAX) {
                json_object_put(value);
                return -EINVAL;
        }

        r = execution_context_put_json(c, key, value);
        if (r < 0 || type == JAVA_TYPE_NONE)
                return r;

        if (!c->java_types) {
                c->java_types = json_object_new_object();
                if (!c->java_types)
                        goto fail;
        }
        t = json_object_new_int(type);
        if (!t || json_object_object_add(c->java_types, key, t) < 0) {
                json_object_put(t);
                goto fail;
        }
        return 0;

fail:
        /* Never leave a value whose class was lost silently: the caller sees the whole put fail. */
        json_object_object_del(c->object, key);
        return -ENOMEM;
}

JavaType execution_context_get_java_type(const ExecutionContext *c, const char *key) {
        json_object *t;
        int v;

        if (!c || !key || !c->java_types || !json_object_object_get_ex(c->java_types, key, &t))
                return JAVA_TYPE_NONE;
        v = json_object_get_int(t);
        return v > JAVA_TYPE_NONE && v < _JAVA_TYPE_MAX ? (JavaType) v : JAVA_TYPE_NONE;
}

int execution_context_put_string(ExecutionContext *c, const char *key, const char *value) {
        json_object *o;

        if (!c || !key || !value)
                return -EINVAL;

        o = json_object_new_string(value);
        if (!o)
                return -ENOMEM;

        return execution_context_put_json(c, key, o);
}

int execution_context_put_int64(ExecutionContext *c, const char *key, int64_t value) {
        json_object *o;

        if (!c || !key)
                return -EINVAL;

        o = json_object_new_int64(value);
        if (!o)
                return -ENOMEM;

        return execution_context_put_json(c, key, o);
}

int execution_context_remove(ExecutionContext *c, const char *key) {
        if (!c || !key)
                return -EINVAL;

        if (!json_object_object_get_ex(c->object, key, NULL))
                return 0;

        json_object_object_del(c->object, key);
        if (c->java_types)
                json_object_object_del(c->java_types, key);
        return 1;
}

int execution_context_get_string(const ExecutionContext *c, const char *key, char **ret) {
        json_object *v;
        const char *s;
        char *copy;

        if (!c || !key || !ret)
                return -EINVAL;

        if (!json_object_object_get_ex(c->object, key, &v))
                return -ENOENT;

        if (json_object_is_type(v, json_type_string))
                s = json_object_get_string(v);
        else
                s = json_object_to_json_string_ext(v, JSON_FLAGS);
        if (!s)
                return -ENOMEM;

        copy = strdup(s);
        if (!copy)
                return -ENOMEM;

        *ret = copy;
        return 0;
}

int execution_context_merge(ExecutionContext *c, const ExecutionContext *src) {
        int r;

        if (!c || !src)
                return -EINVAL;
        if (c == src)
                return 0;

        json_object_object_foreach(src->object, key, value) {
                json_object *copy = NULL;

                if (json_object_deep_copy(value, &copy, NULL) < 0)
                        return -ENOMEM;

                r = execution_context_put_typed(c, key, copy, execution_context_get_java_type(src, key));
                if (r < 0)
                        return r;
        }

        return 0;
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The keys of a JSON object, sorted, in a NULL-terminated array of borrowed pointers. */
static int object_sorted_keys(json_object *o, const char ***ret) {
        size_t n = 0;
        const char **keys;

        keys = calloc((size_t) json_object_object_length(o) + 1, sizeof(char *));
        if (!keys)
                return -ENOMEM;

        json_object_object_foreach(o, key, value) {
                (void) value;
                keys[n++] = key;
        }
        qsort(keys, n, sizeof(char *), compare_strings);

        *ret = keys;
        return (int) n;
}

static int write_json(FILE *f, json_object *v) {
        int r;

        /* Nested objects are sorted too: equal contexts must give equal bytes at every depth. */
        if (json_object_is_type(v, json_type_object)) {
                _cleanup_free_ const char **keys = NULL;

                r = object_sorted_keys(v, &keys);
                if (r < 0)
                        return r;

                fputc('{', f);
                for (size_t i = 0; keys[i]; i++) {
                        _cleanup_(json_object_putp) json_object *k = NULL;
                        const char *ks;

                        /* Lets json-c do the string escaping for the key. */
                        k = json_object_new_string(keys[i]);
                        if (!k)
                                return -ENOMEM;
                        ks = json_object_to_json_string_ext(k, JSON_FLAGS);
                        if (!ks)
                                return -ENOMEM;

                        fprintf(f, "%s%s:", i > 0 ? "," : "", ks);
                        r = write_json(f, json_object_object_get(v, keys[i]));
                        if (r < 0)
                                return r;
                }
                fputc('}', f);

        } else if (json_object_is_type(v, json_type_array)) {
                size_t n = json_object_array_length(v);

                fputc('[', f);
                for (size_t i = 0; i < n; i++) {
                        if (i > 0)
                                fputc(',', f);
                        r = write_json(f, json_object_array_get_idx(v, i));
                        if (r < 0)
                                return r;
                }
                fputc(']', f);

        } else {
                const char *s = json_object_to_json_string_ext(v, JSON_FLAGS);

                if (!s)
                        return -ENOMEM;
                fputs(s, f);
        }

        return 0;
}

int execution_context_serialize(const ExecutionContext *c, char **ret) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t sz = 0;
        int r;

        if (!c || !ret)
                return -EINVAL;

        f = open_memstream(&buf, &sz);
        if (!f)
                return -ENOMEM;

        r = write_json(f, c->object);
        if (r < 0)
                return r;

        r = fclose(TAKE_PTR(f));
        if (r != 0 || !buf)
                return -ENOMEM;

        *ret = TAKE_PTR(buf);
        return 0;
}

/* json-c's strict mode still takes single-quoted object keys and raw control characters in strings. Both
 * can be told from the text alone: outside double-quoted strings a single quote is never valid JSON, inside
 * them control characters must be escaped. */
static bool has_lenient_syntax(const char *json) {
        bool in_string = false;

        for (const char *p = json; *p; p++) {
                if (in_string) {
                        if ((uint8_t) *p < 0x20)
                                return true;
                        if (*p == '\\' && p[1])
                                p++;
                        else if (*p == '"')
                                in_string = false;
                } else if (*p == '"')
                        in_string = true;
                else if (*p == '\'')
                        return true;
        }
        return false;
}

int execution_context_deserialize(const char *json, ExecutionContext **ret) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        size_t len;

        if (!ret)
                return -EINVAL;

        if (isempty(json))
                return execution_context_new(ret);

        len = strlen(json);
        if (len > INT_MAX || has_lenient_syntax(json))
                return -EINVAL;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        /* Only real JSON: no comments, single quotes, trailing commas or broken UTF-8. */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

        o = json_tokener_parse_ex(tok, json, (int) len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success)
                return -EINVAL;

        /* The tokener stops after the first complete value; anything but whitespace after it is junk. */
        for (const char *p = json + json_tokener_get_parse_end(tok); *p; p++)
                if (!strchr(" \t\r\n", *p))
                        return -EINVAL;

        if (!json_object_is_type(o, json_type_object))
                return -EINVAL;

        return execution_context_new_take(TAKE_PTR(o), ret);
}

int execution_context_short(const char *serialized, char **ret) {
        size_t chars = 0, cut = 0;
        char *s;

        if (!serialized || !ret)
                return -EINVAL;

        /* Counting the bytes that start a character (everything but 10xxxxxx) counts code points, and
         * cutting before such a byte never splits a sequence. */
        for (size_t i = 0; serialized[i]; i++) {
                if (((uint8_t) serialized[i] & 0xC0) == 0x80)
                        continue;
                if (chars == EXECUTION_CONTEXT_SHORT_MAX - 8)
                        cut = i;
                chars++;
        }

        if (chars <= EXECUTION_CONTEXT_SHORT_MAX)
                s = strdup(serialized);
        else if (asprintf(&s, "%.*s ...", (int) cut, serialized) < 0)
                s = NULL;
        if (!s)
                return -ENOMEM;

        *ret = s;
        return 0;
}

int execution_context_keys(const ExecutionContext *c, char ***ret_keys) {
        _cleanup_free_ const char **keys = NULL;
        char **l;
        int n;

        if (!c || !ret_keys)
                return -EINVAL;

        n = object_sorted_keys(c->object, &keys);
        if (n < 0)
                return n;

        l = calloc((size_t) n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        for (int i = 0; i < n; i++) {
                l[i] = strdup(keys[i]);
                if (!l[i]) {
                        strv_free(l);
                        return -ENOMEM;
                }
        }

        *ret_keys = l;
        return 0;
}
