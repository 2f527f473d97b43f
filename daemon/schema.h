/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Migration N (1-based) brings a database from PRAGMA user_version N-1 to N. */
extern const char *const schema_migrations[];
extern const size_t schema_migrations_count;

/* The same for a PostgreSQL repository (schema/postgresql/): its own numbering, since it starts from Spring
 * Batch's schema-postgresql.sql and all of batchd's additions at once. */
extern const char *const schema_migrations_postgresql[];
extern const size_t schema_migrations_postgresql_count;
