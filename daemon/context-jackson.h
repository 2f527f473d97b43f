/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "execution-context.h"

/* Spring Batch's Jackson2ExecutionContextStringSerializer: Jackson with default typing NON_FINAL, type ids as
 * class names in an "@class" property. A context is one object,
 *
 *     {"@class":"java.util.HashMap","name":"x","count":7,"total":["java.lang.Long",5],"rate":1.5,"ok":true}
 *
 * where Jackson's "natural" types (String, Integer, Double, Boolean) are plain JSON values and every other
 * value is a [class, value] pair: Long, Short, Byte, Float, Character; non-finite doubles as
 * ["java.lang.Double","NaN"].
 *
 * context_jackson_convert() turns a context parsed as plain JSON (execution_context_deserialize()) that has the
 * "@class" key into the values batchd works with, remembering each one's Java class; a class it does not know
 * is an error naming it. context_jackson_write() is the reverse, with the same rules for picking a value's
 * class as context_java_write(). */

int context_jackson_convert(ExecutionContext *c, char **ret_error);
int context_jackson_write(const ExecutionContext *c, char **ret, char **ret_error);
