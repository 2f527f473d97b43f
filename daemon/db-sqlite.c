/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* TEMPORARY: stands in for the SQLite backend (branch wt-sqlite) until it lands, so the PostgreSQL backend links.
 * Dropped at merge. */

#include "db-internal.h"

static int stub_open(const char *location, DbOpenFlags flags, Db **ret, char **ret_message) {
        if (ret_message)
                *ret_message = strdup("the SQLite backend is not on this branch yet");
        return -EPROTONOSUPPORT;
}

const DbOps db_sqlite_ops = {
        .open = stub_open,
};
