/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "macro.h"

/* Spring Batch's SHORT_CONTEXT column size and its truncation rule: longer serializations keep the first
 * (2500 - 8) characters followed by " ...". */
#define EXECUTION_CONTEXT_SHORT_MAX 2500

/* The Java class of a value read from a context a Spring Batch application wrote (context-format.h), so that
 * writing the context back gives Java the same class: a java.lang.Integer must not come back as a Long, or
 * Spring's getInt() fails with a ClassCastException. JAVA_TYPE_NONE: the value's JSON type decides. */
typedef enum JavaType {
        JAVA_TYPE_NONE,
        JAVA_TYPE_STRING,
        JAVA_TYPE_INTEGER,
        JAVA_TYPE_LONG,
        JAVA_TYPE_SHORT,
        JAVA_TYPE_BYTE,
        JAVA_TYPE_DOUBLE,
        JAVA_TYPE_FLOAT,
        JAVA_TYPE_BOOLEAN,
        JAVA_TYPE_CHARACTER,
        _JAVA_TYPE_MAX,
} JavaType;

/* A key/value map saved at every commit. Values are JSON values (strings, numbers, booleans).
 * java_types is a side table, key -> JavaType (as a JSON int), holding only the keys whose value came from
 * Java with a remembered class; NULL while there are none. Every put or remove of a key drops its entry, so a
 * remembered class never outlives the value it belongs to; copy and merge carry it along. */
typedef struct ExecutionContext {
        json_object *object;
        json_object *java_types;
} ExecutionContext;

int execution_context_new(ExecutionContext **ret);
ExecutionContext *execution_context_free(ExecutionContext *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ExecutionContext *, execution_context_free);
int execution_context_copy(const ExecutionContext *c, ExecutionContext **ret);
/* Another handle on the same contents, without copying them: for a context nobody modifies any more (a
 * committed one; a commit builds a new context). Neither handle may be modified afterwards. */
int execution_context_share(const ExecutionContext *c, ExecutionContext **ret);

size_t execution_context_size(const ExecutionContext *c);
bool execution_context_contains(const ExecutionContext *c, const char *key);
int execution_context_put_string(ExecutionContext *c, const char *key, const char *value);
int execution_context_put_int64(ExecutionContext *c, const char *key, int64_t value);
/* Takes ownership of value. */
int execution_context_put_json(ExecutionContext *c, const char *key, json_object *value);
int execution_context_remove(ExecutionContext *c, const char *key);
/* put_json() that also remembers the value's Java class. Takes ownership of value. */
int execution_context_put_typed(ExecutionContext *c, const char *key, json_object *value, JavaType type);
/* JAVA_TYPE_NONE when the key is absent or has no remembered class. */
JavaType execution_context_get_java_type(const ExecutionContext *c, const char *key);
/* Strings as they are; numbers and booleans as JSON text. -ENOENT when absent. */
int execution_context_get_string(const ExecutionContext *c, const char *key, char **ret);
/* Copies every key of src into c, replacing existing values. */
int execution_context_merge(ExecutionContext *c, const ExecutionContext *src);

/* Compact JSON with keys in sorted order, so equal contexts serialize to equal bytes. */
int execution_context_serialize(const ExecutionContext *c, char **ret);
/* Accepts only a JSON object. NULL or "" gives an empty context. */
int execution_context_deserialize(const char *json, ExecutionContext **ret);
/* Spring's SHORT_CONTEXT of a serialization; counts characters, never splits a UTF-8 sequence. */
int execution_context_short(const char *serialized, char **ret);

/* Iterates in sorted key order. */
int execution_context_keys(const ExecutionContext *c, char ***ret_keys);
