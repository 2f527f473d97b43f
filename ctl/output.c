/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <langinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <wchar.h>

#include "batchctl.h"
#include "log.h"
#include "output.h"

static bool on_tty = false;
static bool colors = false;
static bool utf8 = false;
static unsigned columns = 80;
static pid_t pager_pid = 0;

static bool env_is_false(const char *name) {
        const char *e = getenv(name);

        return e && (streq(e, "0") || streq(e, "false") || streq(e, "no") || streq(e, "off"));
}

static bool env_is_true(const char *name) {
        const char *e = getenv(name);

        return e && (streq(e, "1") || streq(e, "true") || streq(e, "yes") || streq(e, "on"));
}

void output_init(void) {
        struct winsize ws = {};
        const char *e, *term = getenv("TERM");

        on_tty = isatty(STDOUT_FILENO) > 0;

        /* $SYSTEMD_COLORS forces either way, as for systemctl; $NO_COLOR (no-color.org) turns colors off. */
        if (env_is_true("SYSTEMD_COLORS"))
                colors = true;
        else if (env_is_false("SYSTEMD_COLORS") || getenv("NO_COLOR"))
                colors = false;
        else
                colors = on_tty && !(term && streq(term, "dumb"));

        e = nl_langinfo(CODESET);
        utf8 = e && (strcasecmp(e, "UTF-8") == 0 || strcasecmp(e, "utf8") == 0);

        e = getenv("COLUMNS");
        if (e && atoi(e) > 0)
                columns = (unsigned) atoi(e);
        else if (on_tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) >= 0 && ws.ws_col > 0)
                columns = ws.ws_col;
}

bool output_on_tty(void) {
        return on_tty;
}

bool output_colors(void) {
        return colors;
}

bool output_utf8(void) {
        return utf8;
}

#define DEFINE_ANSI(name, seq)                  \
        const char *name(void) {                \
                return colors ? seq : "";       \
        }

DEFINE_ANSI(ansi_highlight, "\033[0;1;39m")
DEFINE_ANSI(ansi_red, "\033[0;1;31m")
DEFINE_ANSI(ansi_green, "\033[0;1;32m")
DEFINE_ANSI(ansi_yellow, "\033[0;1;33m")
DEFINE_ANSI(ansi_blue, "\033[0;1;34m")
DEFINE_ANSI(ansi_grey, "\033[0;38;5;245m")
DEFINE_ANSI(ansi_underline, "\033[0;4m")
DEFINE_ANSI(ansi_normal, "\033[0m")

const char *status_color(const char *status) {
        if (isempty(status))
                return NULL;
        if (streq(status, "COMPLETED"))
                return ansi_green();
        if (streq(status, "FAILED") || streq(status, "UNKNOWN"))
                return ansi_red();
        if (streq(status, "STOPPED") || streq(status, "STOPPING") || streq(status, "ABANDONED"))
                return ansi_yellow();
        if (streq(status, "STARTED") || streq(status, "STARTING"))
                return ansi_blue();
        return NULL;
}

char *one_line(const char *s) {
        char *t, *q;

        t = malloc(2 * strlen(strempty(s)) + 1);
        if (!t)
                return NULL;
        q = t;
        for (const char *p = strempty(s); *p; p++)
                if (*p == '\n') {
                        if (p[1] == '\0')
                                break;
                        *q++ = ';';
                        *q++ = ' ';
                } else
                        *q++ = *p;
        *q = '\0';
        return t;
}

/* ---- times ---- */

char *format_timestamp(char buf[static FORMAT_TIMESTAMP_MAX], usec_t t) {
        /* Not strftime("%a"): the weekday must not depend on LC_TIME, scripts read this. */
        static const char *const wday[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (t == 0 || t == USEC_INFINITY || !localtime_r(&sec, &tm))
                return NULL;
        (void) snprintf(buf, FORMAT_TIMESTAMP_MAX, "%s %04d-%02d-%02d %02d:%02d:%02d%s%s", wday[tm.tm_wday],
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        isempty(tm.tm_zone) ? "" : " ", strempty(tm.tm_zone));
        return buf;
}

char *format_timestamp_relative(char buf[static FORMAT_TIMESTAMP_MAX], usec_t t, usec_t now) {
        if (t == 0 || t == USEC_INFINITY)
                return NULL;
        return timestamp_format_relative(t, now, buf);
}

char *format_timestamp_both(char buf[static FORMAT_TIMESTAMP_BOTH_MAX], usec_t t, usec_t now) {
        char a[FORMAT_TIMESTAMP_MAX], b[FORMAT_TIMESTAMP_MAX];

        if (!format_timestamp(a, t) || !format_timestamp_relative(b, t, now))
                return NULL;
        (void) snprintf(buf, FORMAT_TIMESTAMP_BOTH_MAX, "%s; %s", a, b);
        return buf;
}

char *format_duration(char buf[static FORMAT_DURATION_MAX], usec_t d) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } units[] = {
                { "d",   86400 * USEC_PER_SEC },
                { "h",   3600 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC },
                { "s",   USEC_PER_SEC },
        };
        size_t n = 0;

        if (d < USEC_PER_MSEC) {
                snprintf(buf, FORMAT_DURATION_MAX, "%lluus", (unsigned long long) d);
                return buf;
        }
        if (d < USEC_PER_SEC) {
                snprintf(buf, FORMAT_DURATION_MAX, "%llums", (unsigned long long) (d / USEC_PER_MSEC));
                return buf;
        }

        /* From a second on the fraction is noise for a batch job: "1min 3s", not "1min 3.201s". */
        buf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                usec_t k = d / units[i].usec;

                if (k == 0)
                        continue;
                n += (size_t) snprintf(buf + n, FORMAT_DURATION_MAX - n, "%s%llu%s", n > 0 ? " " : "",
                                       (unsigned long long) k, units[i].suffix);
                if (n >= FORMAT_DURATION_MAX)
                        break;
                d -= k * units[i].usec;
        }
        return buf;
}

/* ---- tables ---- */

typedef struct TableCell {
        char *text;
        const char *color;
} TableCell;

struct Table {
        size_t n_columns;
        char **headers;
        bool *align_right;
        size_t ellipsize;       /* SIZE_MAX: none */
        TableCell *cells;
        size_t n_cells;
};

Table *table_new(const char *header, ...) {
        _cleanup_(table_freep) Table *t = NULL;
        va_list ap;
        size_t n = 0;

        t = calloc(1, sizeof(Table));
        if (!t)
                return NULL;
        t->ellipsize = SIZE_MAX;

        va_start(ap, header);
        for (const char *h = header; h; h = va_arg(ap, const char *))
                n++;
        va_end(ap);

        t->headers = calloc(n, sizeof(char *));
        t->align_right = calloc(n, sizeof(bool));
        if (!t->headers || !t->align_right)
                return NULL;
        t->n_columns = n;

        va_start(ap, header);
        n = 0;
        for (const char *h = header; h; h = va_arg(ap, const char *)) {
                t->headers[n] = strdup(h);
                if (!t->headers[n]) {
                        va_end(ap);
                        return NULL;
                }
                n++;
        }
        va_end(ap);

        return TAKE_PTR(t);
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; t->headers && i < t->n_columns; i++)
                free(t->headers[i]);
        free(t->headers);
        free(t->align_right);
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i].text);
        free(t->cells);
        return mfree(t);
}

void table_set_align_right(Table *t, size_t column) {
        if (column < t->n_columns)
                t->align_right[column] = true;
}

void table_set_ellipsize(Table *t, size_t column) {
        if (column < t->n_columns)
                t->ellipsize = column;
}

int table_add(Table *t, const char *text, const char *color) {
        TableCell *a;
        char *copy;

        copy = strdup(text ?: "-");
        if (!copy)
                return -ENOMEM;
        a = reallocarray(t->cells, t->n_cells + 1, sizeof(TableCell));
        if (!a) {
                free(copy);
                return -ENOMEM;
        }
        t->cells = a;
        t->cells[t->n_cells++] = (TableCell) {
                .text = copy,
                .color = isempty(color) ? NULL : color,
        };
        return 0;
}

int table_addf(Table *t, const char *color, const char *format, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(&s, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        return table_add(t, s, color);
}

size_t table_get_rows(const Table *t) {
        return t->n_columns == 0 ? 0 : t->n_cells / t->n_columns;
}

/* Decodes one UTF-8 sequence; invalid bytes count as one column each. */
static size_t utf8_next(const char *s, unsigned *ret_width) {
        const unsigned char *u = (const unsigned char *) s;
        uint32_t cp;
        size_t len;
        int w;

        if (u[0] < 0x80) {
                *ret_width = 1;
                return 1;
        }
        if ((u[0] & 0xe0) == 0xc0) {
                len = 2;
                cp = u[0] & 0x1f;
        } else if ((u[0] & 0xf0) == 0xe0) {
                len = 3;
                cp = u[0] & 0x0f;
        } else if ((u[0] & 0xf8) == 0xf0) {
                len = 4;
                cp = u[0] & 0x07;
        } else {
                *ret_width = 1;
                return 1;
        }
        for (size_t i = 1; i < len; i++) {
                if ((u[i] & 0xc0) != 0x80) {
                        *ret_width = 1;
                        return 1;
                }
                cp = (cp << 6) | (u[i] & 0x3f);
        }

        w = wcwidth((wchar_t) cp);
        *ret_width = w < 0 ? 1 : (unsigned) w;
        return len;
}

static size_t text_width(const char *s) {
        size_t w = 0;

        while (*s) {
                unsigned cw;

                s += utf8_next(s, &cw);
                w += cw;
        }
        return w;
}

/* Prints at most width columns of s, ending in an ellipsis if it had to cut. Returns the columns printed. */
static size_t print_ellipsized(FILE *f, const char *s, size_t width) {
        const char *ellipsis = utf8 ? "…" : "...";
        size_t ellipsis_width = utf8 ? 1 : 3, used = 0;
        const char *p = s;

        if (text_width(s) <= width) {
                fputs(s, f);
                return text_width(s);
        }
        if (width < ellipsis_width) {
                fprintf(f, "%.*s", (int) width, "...");
                return width;
        }
        while (*p) {
                unsigned cw;
                size_t len = utf8_next(p, &cw);

                if (used + cw > width - ellipsis_width)
                        break;
                fwrite(p, 1, len, f);
                used += cw;
                p += len;
        }
        fputs(ellipsis, f);
        return used + ellipsis_width;
}

int table_print(const Table *t, FILE *f) {
        _cleanup_free_ size_t *width = NULL;
        size_t n_rows = table_get_rows(t), total = 0;

        width = calloc(t->n_columns, sizeof(size_t));
        if (!width)
                return -ENOMEM;

        for (size_t c = 0; c < t->n_columns; c++) {
                if (arg_legend)
                        width[c] = text_width(t->headers[c]);
                for (size_t r = 0; r < n_rows; r++)
                        width[c] = MAX(width[c], text_width(t->cells[r * t->n_columns + c].text));
                total += width[c] + (c > 0 ? 2 : 0);
        }

        /* Only a terminal has a width to respect; in a pipe every byte may matter to a script. */
        if (on_tty && !arg_full && t->ellipsize != SIZE_MAX && total > columns) {
                size_t excess = total - columns, *w = width + t->ellipsize;
                size_t min = MIN(*w, (size_t) 12);

                if (excess >= *w || *w - excess < min)
                        *w = min;
                else
                        *w -= excess;
        }

        for (size_t r = arg_legend ? 0 : 1; r <= n_rows; r++)
                for (size_t c = 0; c < t->n_columns; c++) {
                        const char *text = r == 0 ? t->headers[c] : t->cells[(r - 1) * t->n_columns + c].text;
                        const char *color = r == 0 ? ansi_underline() : t->cells[(r - 1) * t->n_columns + c].color;
                        bool last = c + 1 == t->n_columns;
                        size_t printed, pad;

                        if (c > 0)
                                fputs("  ", f);
                        if (t->align_right[c] && text_width(text) < width[c])
                                for (pad = width[c] - text_width(text); pad > 0; pad--)
                                        fputc(' ', f);
                        if (!isempty(color))
                                fputs(color, f);
                        printed = print_ellipsized(f, text, width[c]);
                        /* The header is underlined across the whole column, as in systemctl. */
                        if (r == 0 && !last && !t->align_right[c])
                                for (pad = printed; pad < width[c]; pad++)
                                        fputc(' ', f);
                        if (!isempty(color))
                                fputs(ansi_normal(), f);
                        if (!last && !t->align_right[c] && r != 0)
                                for (pad = printed; pad < width[c]; pad++)
                                        fputc(' ', f);
                        if (last)
                                fputc('\n', f);
                }

        return ferror(f) ? -EIO : 0;
}

/* ---- JSON ---- */

int json_print(json_object *o, FILE *f) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE;

        flags |= arg_json == JSON_PRETTY ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN;
        if (fputs(json_object_to_json_string_ext(o, flags), f) < 0 || fputc('\n', f) < 0)
                return -EIO;
        return 0;
}

int json_print_line(json_object *o, FILE *f) {
        if (fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), f) < 0 ||
            fputc('\n', f) < 0)
                return -EIO;
        return 0;
}

static int json_add(json_object *o, const char *key, json_object *v, bool may_be_null) {
        if (!v && !may_be_null)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int json_add_usec(json_object *o, const char *key, usec_t t) {
        return t == 0 ? json_add(o, key, NULL, true) : json_add(o, key, json_object_new_uint64(t), false);
}

int json_add_id(json_object *o, const char *key, uint64_t id) {
        return json_add_usec(o, key, id);
}

int json_add_uint(json_object *o, const char *key, uint64_t v) {
        return json_add(o, key, json_object_new_uint64(v), false);
}

int json_add_string(json_object *o, const char *key, const char *s) {
        return json_add(o, key, json_object_new_string(strempty(s)), false);
}

int json_add_string_or_null(json_object *o, const char *key, const char *s) {
        return isempty(s) ? json_add(o, key, NULL, true) : json_add_string(o, key, s);
}

int json_add_bool(json_object *o, const char *key, bool b) {
        return json_add(o, key, json_object_new_boolean(b), false);
}

int json_add_parsed(json_object *o, const char *key, const char *text) {
        json_object *v;

        if (isempty(text))
                return json_add(o, key, json_object_new_object(), false);
        v = json_tokener_parse(text);
        if (!v)
                return json_add_string(o, key, text);
        return json_add(o, key, v, false);
}

/* ---- pager ---- */

void pager_open(void) {
        _cleanup_free_ char *pager = NULL;
        const char *e;
        int fd[2];
        pid_t pid;

        if (!arg_pager || !on_tty || pager_pid > 0)
                return;

        /* Like systemctl: $SYSTEMD_PAGER, then $PAGER; empty or "cat" means no pager at all. */
        e = getenv("SYSTEMD_PAGER");
        if (!e)
                e = getenv("PAGER");
        if (e) {
                e += strspn(e, " \t");
                if (isempty(e) || streq(e, "cat"))
                        return;
                pager = strdup(e);
                if (!pager)
                        return;
        }

        if (pipe2(fd, O_CLOEXEC) < 0)
                return;

        (void) fflush(stdout);
        pid = fork();
        if (pid < 0) {
                safe_close(fd[0]);
                safe_close(fd[1]);
                return;
        }
        if (pid == 0) {
                if (dup2(fd[0], STDIN_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                /* less: quit if one screen, raw colors, no init, keep the screen; as systemctl sets it. */
                (void) setenv("LESS", "FRSXMK", 0);
                (void) setenv("LESSCHARSET", "utf-8", 0);
                if (pager)
                        execl("/bin/sh", "sh", "-c", pager, (char *) NULL);
                else {
                        execlp("less", "less", (char *) NULL);
                        execlp("more", "more", (char *) NULL);
                }
                /* No pager to be had: copy through, so the output still arrives. */
                {
                        char buf[4096];
                        ssize_t n;

                        while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
                                if (write(STDOUT_FILENO, buf, (size_t) n) != n)
                                        break;
                }
                _exit(EXIT_SUCCESS);
        }

        if (dup2(fd[1], STDOUT_FILENO) < 0) {
                safe_close(fd[0]);
                safe_close(fd[1]);
                (void) kill(pid, SIGTERM);
                (void) waitpid(pid, NULL, 0);
                return;
        }
        safe_close(fd[0]);
        safe_close(fd[1]);
        pager_pid = pid;

        /* A pager quit early makes writes fail with EPIPE, which is fine; SIGPIPE would kill us mid-output. */
        (void) signal(SIGPIPE, SIG_IGN);
}

void pager_close(void) {
        if (pager_pid <= 0)
                return;

        (void) fflush(stdout);
        /* EOF for the pager, then let the user read at leisure. */
        (void) close(STDOUT_FILENO);
        while (waitpid(pager_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        pager_pid = 0;
}
