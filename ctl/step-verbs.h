/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <limits.h>

#include "macro.h"

/* The verb table type of batchctl. It lives here for now because the step verb group is the only other
 * table; it moves to a header of its own once the client grows. */
#define VERB_ANY UINT_MAX

typedef struct Verb {
        const char *name;
        unsigned min_args;      /* both count the verb itself */
        unsigned max_args;      /* VERB_ANY: no limit */
        int (*function)(int argc, char *argv[], void *userdata);
} Verb;

/* Finds argv[0] in verbs, checks the argument count and calls the verb. group names the table in messages
 * ("step"), NULL for the top level. Returns what the verb returned: a negative errno on failure (already
 * logged), otherwise the exit status to use. */
int verbs_dispatch(const Verb *verbs, size_t n_verbs, const char *group, int argc, char *argv[], void *userdata);

/* "batchctl step ...": talks to batchd over $BATCH_NOTIFY_FD, so it works only inside a running step. */
int verb_step(int argc, char *argv[], void *userdata);
