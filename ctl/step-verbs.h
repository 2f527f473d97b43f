/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "verbs.h"

/* "batchctl step ...": talks to batchd over $BATCH_NOTIFY_FD, so it works only inside a running step. */
int verb_step(int argc, char *argv[], void *userdata);

/* The help text of the step verbs, shared by "batchctl --help" and "batchctl step --help". */
extern const char step_verbs_help[];
