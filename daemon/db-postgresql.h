/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the PostgreSQL backend exposes besides db_postgresql_ops, for its tests. */

/* Translates SQLite's numbered parameters ?N to PostgreSQL's $N outside literals, quoted identifiers and
 * comments. *ret_n_params gets the highest N. -EINVAL for a '?' that is not ?N. */
int db_postgresql_translate(const char *sql, char **ret, int *ret_n_params);

/* The URI for messages: without the password of its user info or of a password= parameter. */
char *db_postgresql_redact_uri(const char *uri);
