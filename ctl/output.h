/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "macro.h"
#include "time-util.h"

/* Everything batchctl prints for people: colors, times, aligned tables, JSON documents and the pager. */

/* Decides once, before a pager may replace stdout, whether stdout is a terminal, whether to use colors and
 * how wide the terminal is. */
void output_init(void);
bool output_on_tty(void);
bool output_colors(void);
/* Whether the locale can print "●" and "…". */
bool output_utf8(void);

/* The escape sequence when colors are on, "" otherwise. */
const char *ansi_highlight(void);
const char *ansi_red(void);
const char *ansi_green(void);
const char *ansi_yellow(void);
const char *ansi_blue(void);
const char *ansi_grey(void);
const char *ansi_underline(void);
const char *ansi_normal(void);

/* s with every line break replaced by "; ": messages of batchctl are one line each. NULL on OOM. */
char *one_line(const char *s);

/* The color of a BatchStatus name: green for COMPLETED, red for FAILED and UNKNOWN, ... */
const char *status_color(const char *status);

/* "Sun 2026-11-22 04:16:33 CET" in the local time zone; NULL for 0 ("not set"). */
#define FORMAT_TIMESTAMP_MAX 64
char *format_timestamp(char buf[static FORMAT_TIMESTAMP_MAX], usec_t t);
/* "5min ago", "21h left", "now"; like systemd's format_timestamp_relative(). NULL for 0. */
char *format_timestamp_relative(char buf[static FORMAT_TIMESTAMP_MAX], usec_t t, usec_t now);
/* "Sun 2026-11-22 04:16:33 CET; 5min ago". NULL for 0. */
#define FORMAT_TIMESTAMP_BOTH_MAX (2 * FORMAT_TIMESTAMP_MAX + 2)
char *format_timestamp_both(char buf[static FORMAT_TIMESTAMP_BOTH_MAX], usec_t t, usec_t now);
/* "1min 3s", "2h 5s", "350ms": whole seconds from one second on. */
#define FORMAT_DURATION_MAX 64
char *format_duration(char buf[static FORMAT_DURATION_MAX], usec_t d);

/* ---- tables ---- */

typedef struct Table Table;

/* Column headers, NULL-terminated. */
Table *table_new(const char *header, ...);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

void table_set_align_right(Table *t, size_t column);
/* The column that is shortened with "…" when the table is wider than the terminal (never with --full or
 * when stdout is not a terminal). */
void table_set_ellipsize(Table *t, size_t column);

/* Appends one cell to the current row; rows fill up from left to right. NULL text prints as "-". color
 * is an escape sequence from ansi_*() or NULL. */
int table_add(Table *t, const char *text, const char *color);
int table_addf(Table *t, const char *color, const char *format, ...) _printf_(3, 4);
size_t table_get_rows(const Table *t);

/* The header (unless --no-legend), then the rows. */
int table_print(const Table *t, FILE *f);

/* ---- JSON ---- */

/* Prints one document in --json's mode (pretty or one line), followed by a newline. */
int json_print(json_object *o, FILE *f);
/* One line whatever --json's mode: for JSON Lines output (logs, calendar). */
int json_print_line(json_object *o, FILE *f);
/* Adds key: t, or null when t is 0. Returns 0 or -ENOMEM. */
int json_add_usec(json_object *o, const char *key, usec_t t);
int json_add_id(json_object *o, const char *key, uint64_t id);
int json_add_uint(json_object *o, const char *key, uint64_t v);
int json_add_string(json_object *o, const char *key, const char *s);
/* Adds s, or null when s is NULL or empty. */
int json_add_string_or_null(json_object *o, const char *key, const char *s);
int json_add_bool(json_object *o, const char *key, bool b);
/* A context or other JSON text: the parsed value, or the text as a string when it does not parse. */
int json_add_parsed(json_object *o, const char *key, const char *text);

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

/* ---- pager ---- */

/* Pipes stdout through $SYSTEMD_PAGER, $PAGER or less, if stdout is a terminal and --no-pager was not
 * given. Failing to start a pager is not an error: output goes to the terminal directly. */
void pager_open(void);
/* Flushes stdout and waits for the pager to exit. */
void pager_close(void);
