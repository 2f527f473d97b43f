/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdarg.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "lifecycle-log.h"
#include "log.h"

#define FIELD_MAX 24

static void field_add(struct iovec *iov, size_t *n, char **owned, const char *format, ...) _printf_(4, 5);
static void field_add(struct iovec *iov, size_t *n, char **owned, const char *format, ...) {
        va_list ap;
        char *s;

        if (*n >= FIELD_MAX)
                return;
        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return;
        owned[*n] = s;
        iov[*n] = (struct iovec) { .iov_base = s, .iov_len = strlen(s) };
        (*n)++;
}

static void lifecycle_logv(const char *message_id, int priority, const JobExecution *e, const StepExecution *s,
                           char **fields, const char *format, va_list ap) _printf_(6, 0);
static void lifecycle_logv(const char *message_id, int priority, const JobExecution *e, const StepExecution *s,
                           char **fields, const char *format, va_list ap) {
        struct iovec iov[FIELD_MAX];
        char *owned[FIELD_MAX] = {};
        _cleanup_free_ char *message = NULL;
        size_t n = 0;

        if (vasprintf(&message, format, ap) < 0)
                return;

        if (priority > log_get_max_level())
                return;

        if (!log_uses_journal()) {
                log_full(priority, "%s", message);
                return;
        }

        field_add(iov, &n, owned, "MESSAGE=%s", message);
        field_add(iov, &n, owned, "MESSAGE_ID=%s", message_id);
        field_add(iov, &n, owned, "PRIORITY=%i", priority);
        field_add(iov, &n, owned, "SYSLOG_IDENTIFIER=%s", log_get_identifier() ?: "batchd");
        if (e) {
                field_add(iov, &n, owned, "BATCH_JOB_NAME=%s", strempty(e->job_name));
                field_add(iov, &n, owned, "BATCH_JOB_INSTANCE_ID=%" PRIi64, e->job_instance_id);
                field_add(iov, &n, owned, "BATCH_JOB_EXECUTION_ID=%" PRIi64, e->id);
        }
        if (s) {
                field_add(iov, &n, owned, "BATCH_STEP_NAME=%s", strempty(s->step_name));
                field_add(iov, &n, owned, "BATCH_STEP_EXECUTION_ID=%" PRIi64, s->id);
                field_add(iov, &n, owned, "BATCH_STATUS=%s", strempty(batch_status_to_string(s->status)));
                field_add(iov, &n, owned, "BATCH_EXIT_CODE=%s", strempty(s->exit_code));
        } else if (e) {
                field_add(iov, &n, owned, "BATCH_STATUS=%s", strempty(batch_status_to_string(e->status)));
                field_add(iov, &n, owned, "BATCH_EXIT_CODE=%s", strempty(e->exit_code));
        }

        for (char **f = fields; f && *f; f++)
                field_add(iov, &n, owned, "%s", *f);

        if (sd_journal_sendv(iov, (int) n) < 0)
                log_full(priority, "%s", message);

        for (size_t i = 0; i < n; i++)
                free(owned[i]);
}

void lifecycle_log(const char *message_id, int priority, const JobExecution *e, const StepExecution *s,
                   const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        lifecycle_logv(message_id, priority, e, s, NULL, format, ap);
        va_end(ap);
}

void lifecycle_log_fields(const char *message_id, int priority, const JobExecution *e, const StepExecution *s,
                          char **fields, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        lifecycle_logv(message_id, priority, e, s, fields, format, ap);
        va_end(ap);
}
