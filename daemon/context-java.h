/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "execution-context.h"

/* The Java Object Serialization Stream Protocol (the JDK's "Object Serialization Specification", chapter 6)
 * for exactly what Spring Batch's DefaultExecutionContextSerializer stores: one java.util.HashMap whose keys
 * are Strings and whose values are String, Integer, Long, Short, Byte, Double, Float, Boolean, Character or
 * null. These functions work on the raw stream; the Base64 around it is context-format.c's business.
 *
 * Reading accepts what any JDK's ObjectOutputStream writes for such a map (new or back-referenced class
 * descriptors and objects, TC_STRING and TC_LONGSTRING, modified UTF-8) and refuses everything else with a
 * message: another class (named), a nested map, a class descriptor that does not match the JDK's
 * (serialVersionUID, fields), truncation, trailing bytes. Memory stays proportional to the input: no count or
 * length read from the stream is trusted before the bytes behind it are there.
 *
 * Writing produces the bytes the JDK produces for a new HashMap<>() filled in the sorted order of the keys:
 * same capacity and threshold, same iteration order, same handles. Each value is written as its remembered
 * Java class (execution_context_get_java_type()) when it still fits it, otherwise by its JSON type: string ->
 * String, integer -> Long, other number -> Double, boolean -> Boolean, null -> null. Nested objects and arrays
 * cannot be written (-EINVAL). */

int context_java_read(const uint8_t *data, size_t size, ExecutionContext **ret, char **ret_error);
int context_java_write(const ExecutionContext *c, uint8_t **ret, size_t *ret_size, char **ret_error);
