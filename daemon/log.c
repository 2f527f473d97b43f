/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "log.h"

static LogTarget log_target = LOG_TARGET_AUTO;
static int log_max_level = LOG_INFO;
static const char *log_identifier = NULL;

void log_set_target(LogTarget target) {
        log_target = target;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

void log_set_identifier(const char *identifier) {
        log_identifier = identifier;
}

const char *log_get_identifier(void) {
        return log_identifier;
}

static bool journal_available(void) {
        struct stat st;

        /* In containers without journald the socket is missing; sd_journal_send() would silently drop. */
        return stat("/run/systemd/journal/socket", &st) >= 0 && S_ISSOCK(st.st_mode);
}

bool log_uses_journal(void) {
        /* Even when stderr is connected to the journal (JOURNAL_STREAM), native entries are preferred: they carry
         * the structured fields lifecycle events need. */
        return log_target == LOG_TARGET_JOURNAL || (log_target == LOG_TARGET_AUTO && journal_available());
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        char buf[LINE_MAX];
        va_list ap;
        int saved_errno = errno;
        bool journal;

        error = abs(error);
        if (level > log_max_level)
                goto finish;

        errno = error;
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        journal = log_uses_journal();
        if (journal) {
                char filebuf[PATH_MAX + 16], linebuf[32];

                (void) snprintf(filebuf, sizeof(filebuf), "CODE_FILE=%s", file ?: "?");
                (void) snprintf(linebuf, sizeof(linebuf), "CODE_LINE=%d", line);
                if (sd_journal_send_with_location(filebuf, linebuf, func ?: "?",
                                                  "MESSAGE=%s", buf,
                                                  "PRIORITY=%i", level,
                                                  "ERRNO=%i", error,
                                                  log_identifier ? "SYSLOG_IDENTIFIER=%s" : NULL, log_identifier,
                                                  NULL) >= 0)
                        goto finish;
        }

        fprintf(stderr, "%s\n", buf);

finish:
        errno = saved_errno;
        return -error;
}
