/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec-spec.h"

/* The format: a magic string, then one record per field, each a tag byte and a NUL-terminated string (a string
 * passed to execve() cannot contain NUL): 'u' user, 'w' working directory, 'i' identifier, 'a' one argument,
 * 'e' one environment entry, 'f' one journal field, 'U' (empty) user_environment; arguments, entries and fields in
 * order. */
#define EXEC_SPEC_MAGIC "batchd-exec-spec 1"
/* More than execve() accepts anyway (ARG_MAX covers argv and environment together). */
#define EXEC_SPEC_SIZE_MAX (64U * 1024U * 1024U)

void exec_spec_done(ExecSpec *s) {
        if (!s)
                return;
        s->user = mfree(s->user);
        s->working_directory = mfree(s->working_directory);
        s->identifier = mfree(s->identifier);
        s->argv = strv_free(s->argv);
        s->envp = strv_free(s->envp);
        s->log_fields = strv_free(s->log_fields);
}

static void put(FILE *f, char tag, const char *value) {
        fputc(tag, f);
        fputs(value, f);
        fputc('\0', f);
}

int exec_spec_to_memfd(const ExecSpec *s, int *ret_fd) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t size = 0, done = 0;
        FILE *f;

        if (!s || !s->argv || !s->argv[0] || !s->working_directory || !ret_fd)
                return -EINVAL;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fputs(EXEC_SPEC_MAGIC, f);
        fputc('\0', f);
        if (s->user)
                put(f, 'u', s->user);
        put(f, 'w', s->working_directory);
        if (s->identifier)
                put(f, 'i', s->identifier);
        for (char **a = s->argv; *a; a++)
                put(f, 'a', *a);
        for (char **e = s->envp; e && *e; e++)
                put(f, 'e', *e);
        for (char **e = s->log_fields; e && *e; e++)
                put(f, 'f', *e);
        if (s->user_environment)
                put(f, 'U', "");
        if (fclose(f) != 0)
                return -ENOMEM;
        if (size > EXEC_SPEC_SIZE_MAX)
                return -E2BIG;

        fd = memfd_create("batchd-exec-spec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        while (done < size) {
                ssize_t n = write(fd, buf + done, size - done);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) n;
        }
        /* The helper reads what we wrote, and nothing can change it in between. */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;

        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int strv_push(char ***l, size_t *n, const char *value) {
        char **a, *v;

        v = strdup(value);
        if (!v)
                return -ENOMEM;
        a = reallocarray(*l, *n + 2, sizeof(char *));
        if (!a) {
                free(v);
                return -ENOMEM;
        }
        a[(*n)++] = v;
        a[*n] = NULL;
        *l = a;
        return 0;
}

static int set_once(char **field, const char *value) {
        if (*field)
                return -EBADMSG;
        *field = strdup(value);
        return *field ? 0 : -ENOMEM;
}

int exec_spec_from_fd(int fd, ExecSpec *ret) {
        _cleanup_(exec_spec_done) ExecSpec s = {};
        _cleanup_free_ char *buf = NULL;
        size_t size, done = 0, n_argv = 0, n_envp = 0, n_fields = 0;
        struct stat st;
        const char *p, *end;
        int r;

        if (fd < 0 || !ret)
                return -EINVAL;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t) st.st_size > EXEC_SPEC_SIZE_MAX)
                return -EBADMSG;
        size = (size_t) st.st_size;

        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        while (done < size) {
                ssize_t n = pread(fd, buf + done, size - done, (off_t) done);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EBADMSG;
                done += (size_t) n;
        }
        if (buf[size - 1] != '\0' || !streq(buf, EXEC_SPEC_MAGIC))
                return -EBADMSG;

        end = buf + size;
        for (p = buf + strlen(buf) + 1; p < end; p += strlen(p) + 1) {
                const char *value = p + 1;

                switch (*p) {
                case 'u': r = set_once(&s.user, value); break;
                case 'w': r = set_once(&s.working_directory, value); break;
                case 'i': r = set_once(&s.identifier, value); break;
                case 'a': r = strv_push(&s.argv, &n_argv, value); break;
                case 'e': r = strv_push(&s.envp, &n_envp, value); break;
                case 'f': r = strv_push(&s.log_fields, &n_fields, value); break;
                case 'U': r = 0; s.user_environment = true; break;
                default:  r = -EBADMSG;
                }
                if (r < 0)
                        return r;
        }
        if (!s.working_directory || !s.argv)
                return -EBADMSG;
        if (!s.envp) {
                s.envp = calloc(1, sizeof(char *));
                if (!s.envp)
                        return -ENOMEM;
        }

        *ret = s;
        s = (ExecSpec) {};
        return 0;
}
