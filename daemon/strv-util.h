/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "macro.h"

/* Appends a formatted string to the NULL-terminated array *l of *n strings (growing it); -ENOMEM on failure,
 * with *l unchanged. For building the environments of step and alert processes. */
int strv_push_printf(char ***l, size_t *n, const char *format, ...) _printf_(3, 4);
