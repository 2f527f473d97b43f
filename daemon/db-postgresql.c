/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>

#include "db-internal.h"

/* TEMPORARY: a placeholder until the libpq backend lands (issue 13); it is replaced wholesale by the real one.
 * A "postgresql://" database is refused at open with a clear message, so nothing else of it is ever called. */

static int postgresql_open(const char *location, DbOpenFlags flags, Db **ret, char **ret_message) {
        assert(location);
        assert(ret);

        if (ret_message)
                *ret_message = strdup("PostgreSQL support is not built in yet");
        return -EPROTONOSUPPORT;
}

const DbOps db_postgresql_ops = {
        .open = postgresql_open,
};
