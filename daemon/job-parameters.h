/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "macro.h"

/* Column sizes of BATCH_JOB_EXECUTION_PARAMS: longer names or values are refused, never truncated. */
#define JOB_PARAMETER_NAME_MAX 100
#define JOB_PARAMETER_VALUE_MAX 2500
/* How many parameters one launch may carry (over D-Bus). */
#define JOB_PARAMETERS_MAX 1000

typedef enum JobParameterType {
        JOB_PARAMETER_STRING,
        JOB_PARAMETER_LONG,
        JOB_PARAMETER_DOUBLE,
        JOB_PARAMETER_DATE,      /* java.time.LocalDate */
        JOB_PARAMETER_DATETIME,  /* java.time.LocalDateTime */
        _JOB_PARAMETER_TYPE_MAX,
        _JOB_PARAMETER_TYPE_INVALID = -EINVAL,
} JobParameterType;

typedef struct JobParameter {
        char *name;
        JobParameterType type;
        bool identifying;
        /* Given by name without a type ("day=2026-12-01" to batchctl, type "" over D-Bus): type is STRING and
         * value the text as given until job_parameter_apply_declared_type() gives it the type the job
         * declares for it. */
        bool untyped;
        /* Canonical text: exactly what Java's toString() prints for the typed value. It is what
         * PARAMETER_VALUE stores and what the job key hashes. */
        char *value;
        int64_t long_value;      /* valid for JOB_PARAMETER_LONG */
        double double_value;     /* valid for JOB_PARAMETER_DOUBLE */
} JobParameter;

/* An ordered set with unique names; insertion order is kept. */
typedef struct JobParameters {
        JobParameter *items;
        size_t n;
} JobParameters;

#define JOB_PARAMETERS_NULL ((JobParameters) {})

/* "string", "long", "double", "date", "datetime" */
const char *job_parameter_type_to_string(JobParameterType t) _pure_;
JobParameterType job_parameter_type_from_string(const char *s) _pure_;
/* "java.lang.String", "java.lang.Long", "java.lang.Double", "java.time.LocalDate", "java.time.LocalDateTime" */
const char *job_parameter_type_to_java(JobParameterType t) _pure_;
JobParameterType job_parameter_type_from_java(const char *s) _pure_;

/* Validates text for the type and returns Java's toString() of the value, e.g. long "+05" → "5",
 * double "1e7" → "1.0E7", datetime "2024-01-15T10:30:00" → "2024-01-15T10:30". On error returns -EINVAL and,
 * when ret_error is given, a sentence saying what is wrong. */
int job_parameter_canonicalize(JobParameterType t, const char *text, char **ret_value, char **ret_error);

/* Java's Double.toString(): shortest round-trip digits, plain notation in [1e-3, 1e7), else "1.0E7" style. */
int java_double_to_string(double d, char **ret);

void job_parameters_done(JobParameters *p);
int job_parameters_copy(const JobParameters *src, JobParameters *ret);
const JobParameter *job_parameters_get(const JobParameters *p, const char *name);
bool job_parameters_has_identifying(const JobParameters *p);

/* Adds or replaces the parameter called name. The name must be non-empty valid UTF-8 of at most
 * JOB_PARAMETER_NAME_MAX bytes; the value must be valid UTF-8, at most JOB_PARAMETER_VALUE_MAX bytes after
 * canonicalization, and parse as the type. Returns -EINVAL with a message in ret_error otherwise. */
int job_parameters_add(JobParameters *p, const char *name, JobParameterType t, const char *value,
                       bool identifying, char **ret_error);

/* Parses one command-line parameter:
 *   Spring Batch 4 style: name=value, name(long)=5, name(double)=1.5, name(date)=2026-11-21,
 *                         name(datetime)=2026-11-21T02:00:00, and "-name..." for non-identifying;
 *   Spring Batch 5 style: name=value,java.lang.Long,true (type and identifying optional, identifying
 *                         defaults to true).
 * The style is told apart by the value ending in ",java.<known class>" or ",java.<class>,true|false". */
int job_parameters_parse_argument(JobParameters *p, const char *arg, char **ret_error);

/* A job's declaration of p's name (its "parameters", "schedule_parameter", the run.id incrementer) gives
 * the type: an untyped p is converted to it (and stops being untyped); a value that does not parse as that
 * type, or an explicit type other than the declared one, is -EINVAL with a message naming the parameter and
 * both types in ret_error. p is unchanged on error. */
int job_parameter_apply_declared_type(JobParameter *p, JobParameterType declared, char **ret_error);

/* Formats p back into arguments job_parameters_parse_argument() accepts, Spring Batch 4 style. */
int job_parameter_to_argument(const JobParameter *p, char **ret);

/* Spring Batch 5 DefaultJobKeyGenerator: lowercase hex MD5 over the identifying parameters sorted by name. */
int job_parameters_job_key(const JobParameters *p, char ret[static 33]);

/* JobParameters.toString() of the identifying parameters, as Spring 5.x puts it into exception messages:
 * {'name':'{value=testuser, type=class java.lang.String, identifying=true}','run.id':'{...}'} */
int job_parameters_identifying_to_string(const JobParameters *p, char **ret);

/* Replaces every "${name}" in text by the value of parameter name; unknown names are an error. The
 * result is one string: values are never split or interpreted. */
int job_parameters_expand(const JobParameters *p, const char *text, char **ret, char **ret_error);

bool utf8_is_valid(const char *s) _pure_;
