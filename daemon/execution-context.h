/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "macro.h"

/* Spring Batch's SHORT_CONTEXT column size and its truncation rule: longer serializations keep the first
 * (2500 - 8) characters followed by " ...". */
#define EXECUTION_CONTEXT_SHORT_MAX 2500

/* A key/value map saved at every commit. Values are JSON values (strings, numbers, booleans). */
typedef struct ExecutionContext {
        json_object *object;
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
