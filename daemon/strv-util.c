/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>

#include "strv-util.h"

int strv_push_printf(char ***l, size_t *n, const char *format, ...) {
        char **nl, *s;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        nl = reallocarray(*l, *n + 2, sizeof(char *));
        if (!nl) {
                free(s);
                return -ENOMEM;
        }
        nl[(*n)++] = s;
        nl[*n] = NULL;
        *l = nl;
        return 0;
}
