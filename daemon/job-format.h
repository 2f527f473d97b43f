/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "conf.h"

/* A loaded job written back in the syntax of job files: the "{ ... }" group of one element of "jobs", with
 * every setting the job runs with, defaults included, in a fixed order. It is the definition batchd uses, not
 * the text of the file (comments and layout are not kept, and the file may have changed since): loading the
 * text gives a job that formats to the same text. Scheduling settings appear only for a job with a
 * schedule, catch_up only for a persistent one, incrementer only when there is one, as the loader requires. Returns 0 or -ENOMEM. */
int job_config_format(const JobConfig *j, char **ret);
