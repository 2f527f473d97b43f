/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "execution-context.h"
#include "macro.h"

/* The text an execution context is stored as in SERIALIZED_CONTEXT/SHORT_CONTEXT, so that batchd and Spring
 * Batch 5 applications can share one repository (docs/spring-interop.md):
 *
 *   json     batchd's own plain JSON object (execution_context_serialize()), what older batchd wrote;
 *   java     Spring's DefaultExecutionContextSerializer: Base64 of a Java-serialized java.util.HashMap
 *            (context-java.h);
 *   jackson  Spring's Jackson2ExecutionContextStringSerializer: JSON with Jackson's default typing,
 *            {"@class":"java.util.HashMap","n":["java.lang.Long",5],...} (context-jackson.h).
 *
 * Reading never needs to be told the format: it is recognized from the text. Writing uses the one configured
 * (context_format in batchd.conf). Errors come back as a negative errno and, when ret_error is not NULL, a
 * message for people in *ret_error (to free) that names what was wrong, a Java class for instance. */

typedef enum ContextFormat {
        CONTEXT_FORMAT_JSON,
        CONTEXT_FORMAT_JAVA,
        CONTEXT_FORMAT_JACKSON,
        _CONTEXT_FORMAT_MAX,
        _CONTEXT_FORMAT_INVALID = -EINVAL,
} ContextFormat;

const char *context_format_to_string(ContextFormat f) _pure_;
ContextFormat context_format_from_string(const char *s) _pure_;

/* Which format the text is in, from its first bytes; -EBADMSG when none. */
ContextFormat context_format_detect(const char *text, size_t size) _pure_;

/* Any of the three formats, recognized from the text; NULL or empty text gives an empty context. The text
 * need not be NUL-terminated. Never trusts a length or count inside the text: memory stays proportional to
 * size. This is the entry point for fuzzing. */
int execution_context_parse(const char *text, size_t size, ExecutionContext **ret, char **ret_error);

/* c in format f, NUL-terminated. Fails (-EINVAL, with a message) for a value the format cannot hold, e.g. a
 * nested object in the java format. */
int execution_context_serialize_as(const ExecutionContext *c, ContextFormat f, char **ret, char **ret_error);

/* Java classes by name, for the readers and writers of both Spring formats. */
const char *java_type_to_class(JavaType t) _pure_;
JavaType java_type_from_class(const char *name) _pure_;

/* The class a non-null value is written as: its remembered class when the value still fits it (an Integer
 * within 32 bits, a Character of one UTF-16 unit, ...), else the default for its JSON type: string -> String,
 * integer -> Long, other number -> Double, boolean -> Boolean. JAVA_TYPE_NONE for objects and arrays, which
 * neither Spring format can carry as batchd writes them. */
JavaType java_type_for_value(json_object *v, JavaType remembered);

/* Sets *ret_error (when not NULL) to the formatted message and returns r. */
int context_error(char **ret_error, int r, const char *format, ...) _printf_(3, 4);

/* A JSON double that prints as the shortest text reading back to the same value (as float when is_float),
 * "0.1" rather than json-c's "0.10000000000000001". Non-finite values are refused (JSON has none). */
json_object *context_json_new_double(double d, bool is_float);
