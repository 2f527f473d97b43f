/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "log.h"
#include "verbs.h"

size_t string_edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), d;
        _cleanup_free_ size_t *rows = NULL;
        size_t *two_back, *prev, *cur;

        /* Optimal string alignment distance: insertions, deletions, substitutions and transpositions of
         * neighbours each cost one, so "stauts" is one edit from "status", not two. Three rows of the
         * table suffice; verbs are short, so the quadratic time does not matter. */
        rows = calloc(3 * (lb + 1), sizeof(size_t));
        if (!rows)
                return SIZE_MAX;
        two_back = rows;
        prev = rows + (lb + 1);
        cur = rows + 2 * (lb + 1);

        for (size_t j = 0; j <= lb; j++)
                prev[j] = j;

        for (size_t i = 1; i <= la; i++) {
                size_t *t;

                cur[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;

                        cur[j] = MIN(MIN(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + cost);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                cur[j] = MIN(cur[j], two_back[j - 2] + 1);
                }

                t = two_back;
                two_back = prev;
                prev = cur;
                cur = t;
        }

        d = prev[lb];
        return d;
}

const Verb *verbs_find(const Verb *verbs, size_t n_verbs, const char *name) {
        for (size_t i = 0; i < n_verbs; i++)
                if (streq(verbs[i].name, name))
                        return verbs + i;
        return NULL;
}

const Verb *verbs_suggest(const Verb *verbs, size_t n_verbs, const char *name) {
        const Verb *best = NULL;
        size_t best_distance = SIZE_MAX, len = strlen(name);

        for (size_t i = 0; i < n_verbs; i++) {
                size_t d = string_edit_distance(name, verbs[i].name);

                if (d < best_distance) {
                        best_distance = d;
                        best = verbs + i;
                }
        }

        /* A suggestion must be a plausible typo: at most a third of the word wrong (at least one edit, at
         * most three), so "strat" suggests "start" but "foo" suggests nothing. */
        if (!best || best_distance > MAX((size_t) 1, MIN((size_t) 3, (len + 2) / 3)) || best_distance >= len)
                return NULL;
        return best;
}

int verbs_dispatch(const Verb *verbs, size_t n_verbs, const char *group, int argc, char *argv[], void *userdata) {
        const Verb *verb;

        if (argc < 1 || !argv[0]) {
                log_error("Missing %s%sverb, see --help.", strempty(group), group ? " " : "");
                return -EINVAL;
        }

        verb = verbs_find(verbs, n_verbs, argv[0]);
        if (!verb) {
                const Verb *suggestion = verbs_suggest(verbs, n_verbs, argv[0]);

                if (suggestion)
                        log_error("Unknown %s%sverb '%s', did you mean '%s%s%s'? See --help.", strempty(group),
                                  group ? " " : "", argv[0], strempty(group), group ? " " : "", suggestion->name);
                else
                        log_error("Unknown %s%sverb '%s', see --help.", strempty(group), group ? " " : "", argv[0]);
                return -EINVAL;
        }

        if ((unsigned) argc < verb->min_args) {
                log_error("Too few arguments for '%s%s%s'%s%s%s%s.", strempty(group), group ? " " : "", verb->name,
                          verb->usage ? ", usage: " : "", verb->usage ? verb->name : "", verb->usage ? " " : "",
                          strempty(verb->usage));
                return -EINVAL;
        }
        if (verb->max_args != VERB_ANY && (unsigned) argc > verb->max_args) {
                log_error("Too many arguments for '%s%s%s'%s%s%s%s.", strempty(group), group ? " " : "", verb->name,
                          verb->usage ? ", usage: " : "", verb->usage ? verb->name : "", verb->usage ? " " : "",
                          strempty(verb->usage));
                return -EINVAL;
        }

        return verb->function(argc, argv, userdata);
}
