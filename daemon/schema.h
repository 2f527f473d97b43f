/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Migration N (1-based) brings a database from PRAGMA user_version N-1 to N. */
extern const char *const schema_migrations[];
extern const size_t schema_migrations_count;
