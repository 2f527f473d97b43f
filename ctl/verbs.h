/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <limits.h>

#include "macro.h"

/* The verb tables of batchctl: the top level ("batchctl start ...") and the step group ("batchctl step put
 * ..."). */
#define VERB_ANY UINT_MAX

typedef struct Verb {
        const char *name;
        unsigned min_args;      /* both count the verb itself */
        unsigned max_args;      /* VERB_ANY: no limit */
        int (*function)(int argc, char *argv[], void *userdata);
        const char *usage;      /* arguments after the verb, for --help and usage errors; may be NULL */
        const char *help;       /* one paragraph, for "batchctl VERB --help"; may be NULL */
} Verb;

/* Finds argv[0] in verbs, checks the argument count and calls the verb. group names the table in messages
 * ("step"), NULL for the top level. An unknown verb is refused with the nearest known one suggested. Returns
 * what the verb returned: a negative errno on failure (already logged), otherwise the exit status to use. */
int verbs_dispatch(const Verb *verbs, size_t n_verbs, const char *group, int argc, char *argv[], void *userdata);

const Verb *verbs_find(const Verb *verbs, size_t n_verbs, const char *name);

/* The verb closest to name by edit distance, or NULL if none is close enough to be a plausible typo. */
const Verb *verbs_suggest(const Verb *verbs, size_t n_verbs, const char *name);

/* Levenshtein distance, exposed for the tests of the suggestion threshold. */
size_t string_edit_distance(const char *a, const char *b);
