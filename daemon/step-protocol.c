/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "step-protocol.h"

static const char *const step_request_type_table[_STEP_REQUEST_TYPE_MAX] = {
        [STEP_REQUEST_GET]       = "GET",
        [STEP_REQUEST_PUT]       = "PUT",
        [STEP_REQUEST_ADD]       = "ADD",
        [STEP_REQUEST_COMMIT]    = "COMMIT",
        [STEP_REQUEST_STATUS]    = "STATUS",
        [STEP_REQUEST_EXIT_CODE] = "EXIT_CODE",
        [STEP_REQUEST_TOTAL]     = "TOTAL",
};

static const char *const step_scope_table[_STEP_SCOPE_MAX] = {
        [STEP_SCOPE_STEP] = "step",
        [STEP_SCOPE_JOB]  = "job",
};

static const struct {
        const char *name;
        size_t offset;
} count_table[] = {
        { "read",         offsetof(StepContribution, read_count)         },
        { "write",        offsetof(StepContribution, write_count)        },
        { "filter",       offsetof(StepContribution, filter_count)       },
        { "read_skip",    offsetof(StepContribution, read_skip_count)    },
        { "write_skip",   offsetof(StepContribution, write_skip_count)   },
        { "process_skip", offsetof(StepContribution, process_skip_count) },
};

#define COUNT(c, i) (*(int64_t *) ((uint8_t *) (c) + count_table[(i)].offset))
#define COUNT_CONST(c, i) (*(const int64_t *) ((const uint8_t *) (c) + count_table[(i)].offset))

const char *step_request_type_to_string(StepRequestType t) {
        if (t < 0 || t >= _STEP_REQUEST_TYPE_MAX)
                return NULL;
        return step_request_type_table[t];
}

StepRequestType step_request_type_from_string(const char *s) {
        if (!s)
                return _STEP_REQUEST_TYPE_INVALID;
        for (StepRequestType t = 0; t < _STEP_REQUEST_TYPE_MAX; t++)
                if (streq(step_request_type_table[t], s))
                        return t;
        return _STEP_REQUEST_TYPE_INVALID;
}

const char *step_scope_to_string(StepScope s) {
        if (s < 0 || s >= _STEP_SCOPE_MAX)
                return NULL;
        return step_scope_table[s];
}

StepScope step_scope_from_string(const char *s) {
        if (!s)
                return _STEP_SCOPE_INVALID;
        for (StepScope i = 0; i < _STEP_SCOPE_MAX; i++)
                if (streq(step_scope_table[i], s))
                        return i;
        return _STEP_SCOPE_INVALID;
}

void step_request_done(StepRequest *req) {
        if (!req)
                return;
        req->key = mfree(req->key);
        req->value = mfree(req->value);
        req->text = mfree(req->text);
        req->exit_code = mfree(req->exit_code);
}

void step_reply_done(StepReply *reply) {
        if (!reply)
                return;
        reply->text = mfree(reply->text);
}

int step_contribution_add(StepContribution *a, const StepContribution *b) {
        StepContribution sum = *a;

        for (size_t i = 0; i < ELEMENTSOF(count_table); i++) {
                int64_t x = COUNT_CONST(b, i);

                if (x < 0 || __builtin_add_overflow(COUNT(&sum, i), x, &COUNT(&sum, i)))
                        return -ERANGE;
        }

        *a = sum;
        return 0;
}

bool step_contribution_is_zero(const StepContribution *c) {
        for (size_t i = 0; i < ELEMENTSOF(count_table); i++)
                if (COUNT_CONST(c, i) != 0)
                        return false;
        return true;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. JSON and SQLite both need it. */
static bool utf8_is_valid_n(const uint8_t *s, size_t n) {
        size_t i = 0;

        while (i < n) {
                uint8_t c = s[i];
                size_t len;
                uint32_t cp;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        len = 2, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        len = 3, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        len = 4, cp = c & 0x07;
                else
                        return false;

                if (n - i < len)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += len;
        }

        return true;
}

/* Keys and exit codes are single words: no whitespace, no control characters. */
static bool word_is_valid(const char *s, size_t max) {
        size_t n = strlen(s);

        if (n == 0 || n > max)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return false;
        return true;
}

static bool text_is_valid(const char *s, size_t max, bool allow_newline) {
        if (strlen(s) > max)
                return false;
        for (const char *p = s; *p; p++) {
                unsigned char c = *p;

                if (c == '\t' || (c == '\n' && allow_newline))
                        continue;
                if (c < ' ' || c == 0x7f)
                        return false;
        }
        return true;
}

static int parse_count(const char *s, int64_t *ret) {
        int64_t v = 0;

        if (*s == '\0')
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
                        return -ERANGE;
        }

        *ret = v;
        return 0;
}

/* "name=N name=N ...", each added to *counts. */
static int parse_counts(char *list, StepContribution *counts, const char **ret_error) {
        char *p = list;

        while (p) {
                char *token = p, *eq, *next = strchr(p, ' ');
                bool found = false;
                int64_t v;
                int r;

                if (next)
                        *next++ = '\0';
                p = next;

                eq = strchr(token, '=');
                if (!eq) {
                        *ret_error = "Counts must be given as name=number";
                        return -EINVAL;
                }
                *eq = '\0';

                r = parse_count(eq + 1, &v);
                if (r < 0) {
                        *ret_error = r == -ERANGE ? "Count out of range" : "Count is not a non-negative decimal number";
                        return r;
                }

                for (size_t i = 0; i < ELEMENTSOF(count_table); i++) {
                        if (!streq(count_table[i].name, token))
                                continue;
                        if (__builtin_add_overflow(COUNT(counts, i), v, &COUNT(counts, i))) {
                                *ret_error = "Count out of range";
                                return -ERANGE;
                        }
                        found = true;
                        break;
                }
                if (!found) {
                        *ret_error = "Unknown count name (read, write, filter, read_skip, write_skip, process_skip)";
                        return -EINVAL;
                }
        }

        return 0;
}

/* Splits off the first space-separated word of *p, advancing *p past the separator (NULL at the end). */
static char *next_word(char **p) {
        char *word = *p, *space;

        if (!word)
                return NULL;
        space = strchr(word, ' ');
        if (space) {
                *space = '\0';
                *p = space + 1;
        } else
                *p = NULL;
        return word;
}

static int request_parse_internal(const void *buf, size_t size, StepRequest *ret, const char **ret_error) {
        _cleanup_(step_request_done) StepRequest req = { .type = _STEP_REQUEST_TYPE_INVALID, .scope = _STEP_SCOPE_INVALID };
        _cleanup_free_ char *copy = NULL;
        char *p, *verb, *word;
        int r;

        if (size == 0) {
                *ret_error = "Empty message";
                return -EINVAL;
        }
        if (size > STEP_MESSAGE_MAX) {
                *ret_error = "Message too long";
                return -EMSGSIZE;
        }
        if (memchr(buf, '\0', size)) {
                *ret_error = "Message contains a NUL byte";
                return -EBADMSG;
        }
        if (!utf8_is_valid_n(buf, size)) {
                *ret_error = "Message is not valid UTF-8";
                return -EBADMSG;
        }

        copy = strndup(buf, size);
        if (!copy)
                return -ENOMEM;

        p = copy;
        verb = next_word(&p);
        req.type = step_request_type_from_string(verb);
        if (req.type < 0) {
                *ret_error = "Unknown request (GET, PUT, ADD, COMMIT, STATUS, EXIT_CODE, TOTAL)";
                return -EINVAL;
        }

        switch (req.type) {

        case STEP_REQUEST_GET:
        case STEP_REQUEST_PUT:
                word = next_word(&p);
                req.scope = step_scope_from_string(word);
                if (req.scope < 0) {
                        *ret_error = "Scope must be \"step\" or \"job\"";
                        return -EINVAL;
                }

                /* GET's key is the whole rest, so a stray space makes the key invalid rather than ignored. */
                word = req.type == STEP_REQUEST_GET ? TAKE_PTR(p) : next_word(&p);
                if (!word || !word_is_valid(word, STEP_KEY_MAX)) {
                        *ret_error = word && strlen(word) > STEP_KEY_MAX ? "Key too long" :
                                "Key must be a non-empty word without whitespace or control characters";
                        return word && strlen(word) > STEP_KEY_MAX ? -EMSGSIZE : -EINVAL;
                }
                req.key = strdup(word);
                if (!req.key)
                        return -ENOMEM;

                if (req.type == STEP_REQUEST_PUT) {
                        /* The value is everything after the key's separator, spaces and newlines included. */
                        req.value = strdup(p ?: "");
                        if (!req.value)
                                return -ENOMEM;
                }
                break;

        case STEP_REQUEST_ADD:
        case STEP_REQUEST_COMMIT:
                if (!p) {
                        if (req.type == STEP_REQUEST_ADD) {
                                *ret_error = "ADD needs at least one name=number";
                                return -EINVAL;
                        }
                        break;
                }
                r = parse_counts(p, &req.counts, ret_error);
                if (r < 0)
                        return r;
                break;

        case STEP_REQUEST_STATUS:
                p = p ?: verb + strlen(verb); /* "STATUS" alone clears the status line */
                if (!text_is_valid(p, STEP_STATUS_MAX, /* allow_newline= */ false)) {
                        *ret_error = strlen(p) > STEP_STATUS_MAX ? "Status text too long" :
                                "Status text must be a single line without control characters";
                        return strlen(p) > STEP_STATUS_MAX ? -EMSGSIZE : -EBADMSG;
                }
                req.text = strdup(p);
                if (!req.text)
                        return -ENOMEM;
                break;

        case STEP_REQUEST_EXIT_CODE:
                word = next_word(&p);
                if (!word || !word_is_valid(word, STEP_EXIT_CODE_MAX)) {
                        *ret_error = word && strlen(word) > STEP_EXIT_CODE_MAX ? "Exit code too long" :
                                "Exit code must be a non-empty word without whitespace or control characters";
                        return word && strlen(word) > STEP_EXIT_CODE_MAX ? -EMSGSIZE : -EINVAL;
                }
                req.exit_code = strdup(word);
                if (!req.exit_code)
                        return -ENOMEM;

                if (p) {
                        if (!text_is_valid(p, STEP_EXIT_DESCRIPTION_MAX, /* allow_newline= */ true)) {
                                *ret_error = strlen(p) > STEP_EXIT_DESCRIPTION_MAX ? "Exit description too long" :
                                        "Exit description must not contain control characters other than tab and newline";
                                return strlen(p) > STEP_EXIT_DESCRIPTION_MAX ? -EMSGSIZE : -EBADMSG;
                        }
                        req.text = strdup(p);
                        if (!req.text)
                                return -ENOMEM;
                }
                break;

        case STEP_REQUEST_TOTAL:
                word = next_word(&p);
                if (!word || p) {
                        *ret_error = "TOTAL needs exactly one count";
                        return -EINVAL;
                }
                r = parse_count(word, &req.total);
                if (r < 0) {
                        *ret_error = r == -ERANGE ? "Count out of range" : "Count is not a non-negative decimal number";
                        return r;
                }
                break;

        default:
                return -EINVAL;
        }

        *ret = req;
        req = (StepRequest) {};
        return 0;
}

int step_request_parse(const void *buf, size_t size, StepRequest *ret, const char **ret_error) {
        const char *error = NULL;
        int r;

        r = request_parse_internal(buf, size, ret, &error);
        if (ret_error)
                *ret_error = r < 0 ? (error ?: strerror(-r)) : NULL;
        return r;
}

static int append(char **buf, size_t *size, const char *s, size_t n) {
        char *m;

        /* Requests are checked against STEP_MESSAGE_MAX afterwards; this only keeps the size arithmetic sane. */
        if (n > STEP_MESSAGE_MAX * 2 || *size > STEP_MESSAGE_MAX * 2)
                return -EMSGSIZE;

        m = realloc(*buf, *size + n + 1);
        if (!m)
                return -ENOMEM;
        memcpy(m + *size, s, n);
        *size += n;
        m[*size] = '\0';
        *buf = m;
        return 0;
}

static int append_string(char **buf, size_t *size, const char *s) {
        return append(buf, size, s, strlen(s));
}

int step_request_format(const StepRequest *req, char **ret, size_t *ret_size, const char **ret_error) {
        _cleanup_(step_request_done) StepRequest check = {};
        _cleanup_free_ char *buf = NULL;
        const char *verb, *error = NULL;
        size_t size = 0;
        int r;

        verb = step_request_type_to_string(req->type);
        if (!verb) {
                error = "Unknown request type";
                r = -EINVAL;
                goto fail;
        }

        r = append_string(&buf, &size, verb);
        if (r < 0)
                goto fail;

        switch (req->type) {

        case STEP_REQUEST_GET:
        case STEP_REQUEST_PUT: {
                const char *scope = step_scope_to_string(req->scope);

                if (!scope || !req->key) {
                        error = !scope ? "Scope must be \"step\" or \"job\"" : "Key missing";
                        r = -EINVAL;
                        goto fail;
                }
                if ((r = append_string(&buf, &size, " ")) < 0 ||
                    (r = append_string(&buf, &size, scope)) < 0 ||
                    (r = append_string(&buf, &size, " ")) < 0 ||
                    (r = append_string(&buf, &size, req->key)) < 0)
                        goto fail;
                if (req->type == STEP_REQUEST_PUT &&
                    ((r = append_string(&buf, &size, " ")) < 0 ||
                     (r = append_string(&buf, &size, strempty(req->value))) < 0))
                        goto fail;
                break;
        }

        case STEP_REQUEST_ADD:
        case STEP_REQUEST_COMMIT:
                for (size_t i = 0; i < ELEMENTSOF(count_table); i++) {
                        char item[64];
                        int64_t v = COUNT_CONST(&req->counts, i);

                        /* Zero adds nothing; ADD still needs one item, so it gets "read=0" if all are zero. */
                        if (v == 0 && !(req->type == STEP_REQUEST_ADD && i == 0 && step_contribution_is_zero(&req->counts)))
                                continue;
                        if (v < 0) {
                                error = "Counts must not be negative";
                                r = -ERANGE;
                                goto fail;
                        }
                        (void) snprintf(item, sizeof(item), " %s=%" PRIi64, count_table[i].name, v);
                        r = append_string(&buf, &size, item);
                        if (r < 0)
                                goto fail;
                }
                break;

        case STEP_REQUEST_STATUS:
                if ((r = append_string(&buf, &size, " ")) < 0 ||
                    (r = append_string(&buf, &size, strempty(req->text))) < 0)
                        goto fail;
                break;

        case STEP_REQUEST_TOTAL: {
                char item[32];

                if (req->total < 0) {
                        error = "Counts must not be negative";
                        r = -ERANGE;
                        goto fail;
                }
                (void) snprintf(item, sizeof(item), " %" PRIi64, req->total);
                if ((r = append_string(&buf, &size, item)) < 0)
                        goto fail;
                break;
        }

        case STEP_REQUEST_EXIT_CODE:
                if ((r = append_string(&buf, &size, " ")) < 0 ||
                    (r = append_string(&buf, &size, strempty(req->exit_code))) < 0)
                        goto fail;
                if (req->text &&
                    ((r = append_string(&buf, &size, " ")) < 0 ||
                     (r = append_string(&buf, &size, req->text)) < 0))
                        goto fail;
                break;

        default:
                r = -EINVAL;
                goto fail;
        }

        /* The sender applies the receiver's rules, so a bad key fails locally with the same explanation. */
        r = step_request_parse(buf, size, &check, &error);
        if (r < 0)
                goto fail;

        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        if (ret_error)
                *ret_error = NULL;
        return 0;

fail:
        if (ret_error)
                *ret_error = error ?: (r == -EMSGSIZE ? "Message too long" : strerror(-r));
        return r;
}

int step_reply_parse(const void *buf, size_t size, StepReply *ret) {
        _cleanup_free_ char *copy = NULL;
        char *p, *verb;

        if (size == 0 || size > STEP_MESSAGE_MAX)
                return size == 0 ? -EINVAL : -EMSGSIZE;
        if (memchr(buf, '\0', size) || !utf8_is_valid_n(buf, size))
                return -EBADMSG;

        copy = strndup(buf, size);
        if (!copy)
                return -ENOMEM;

        p = copy;
        verb = next_word(&p);

        if (streq(verb, "OK") && !p) {
                *ret = (StepReply) { .type = STEP_REPLY_OK };
                return 0;
        }
        if (streq(verb, "NOTFOUND") && !p) {
                *ret = (StepReply) { .type = STEP_REPLY_NOT_FOUND };
                return 0;
        }
        if (streq(verb, "VALUE") && p) {
                char *value = strdup(p);

                if (!value)
                        return -ENOMEM;
                *ret = (StepReply) { .type = STEP_REPLY_VALUE, .text = value };
                return 0;
        }
        if (streq(verb, "ERR") && p) {
                const char *number = next_word(&p);
                char *text;
                int64_t e;

                if (parse_count(number, &e) < 0 || e <= 0 || e > 4095)
                        return -EINVAL;
                text = strdup(p ?: "");
                if (!text)
                        return -ENOMEM;
                *ret = (StepReply) { .type = STEP_REPLY_ERROR, .error = -(int) e, .text = text };
                return 0;
        }

        return -EINVAL;
}

int step_reply_format(const StepReply *reply, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        int r;

        switch (reply->type) {

        case STEP_REPLY_OK:
                r = append_string(&buf, &size, "OK");
                break;

        case STEP_REPLY_NOT_FOUND:
                r = append_string(&buf, &size, "NOTFOUND");
                break;

        case STEP_REPLY_VALUE:
                r = append_string(&buf, &size, "VALUE ");
                if (r >= 0)
                        r = append_string(&buf, &size, strempty(reply->text));
                break;

        case STEP_REPLY_ERROR: {
                char head[32];
                int e = abs(reply->error);

                if (e <= 0 || e > 4095)
                        e = EIO;
                (void) snprintf(head, sizeof(head), "ERR %i ", e);
                r = append_string(&buf, &size, head);
                if (r >= 0)
                        r = append_string(&buf, &size, reply->text ?: strerror(e));
                break;
        }

        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        if (size > STEP_MESSAGE_MAX)
                return -EMSGSIZE;
        if (!utf8_is_valid_n((const uint8_t *) buf, size))
                return -EBADMSG;

        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int step_channel_from_environment(int *ret_fd) {
        const char *e;
        int64_t fd;
        int type = 0;
        socklen_t len = sizeof(type);
        struct stat st;

        e = getenv(STEP_NOTIFY_FD_ENV);
        if (isempty(e))
                return -ENXIO;
        if (parse_count(e, &fd) < 0 || fd > INT_MAX)
                return -EBADF;
        if (fstat((int) fd, &st) < 0)
                return -EBADF;
        if (!S_ISSOCK(st.st_mode))
                return -ENOTSOCK;
        if (getsockopt((int) fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
                return -errno;
        if (type != SOCK_SEQPACKET)
                return -ENOTSOCK;

        *ret_fd = (int) fd;
        return 0;
}

static int send_with_fd(int fd, const void *buf, size_t size, int passed_fd) {
        union {
                struct cmsghdr cmsghdr;
                uint8_t buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = size };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);

        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &passed_fd, sizeof(int));

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };

                if (sendmsg(fd, &mh, MSG_NOSIGNAL) >= 0)
                        return 0;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;

                /* Someone made the channel non-blocking; we are a simple client and wait. */
                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                        return -errno;
        }
}

int step_channel_call(int fd, const StepRequest *req, StepReply *ret, const char **ret_error) {
        _cleanup_free_ char *msg = NULL, *buf = NULL;
        _cleanup_close_ int reply_fd = -EBADF, passed_fd = -EBADF;
        const char *error = NULL;
        int pair[2];
        size_t size;
        ssize_t n;
        int r;

        r = step_request_format(req, &msg, &size, &error);
        if (r < 0) {
                if (ret_error)
                        *ret_error = error;
                return r;
        }
        if (ret_error)
                *ret_error = NULL;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        reply_fd = pair[0];
        passed_fd = pair[1];

        r = send_with_fd(fd, msg, size, passed_fd);
        if (r < 0)
                return r;
        /* Only batchd holds the other end now: if it drops the request, recv() sees EOF instead of hanging. */
        passed_fd = safe_close(passed_fd);

        buf = malloc(STEP_MESSAGE_MAX + 1);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                struct iovec iov = { .iov_base = buf, .iov_len = STEP_MESSAGE_MAX + 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

                n = recvmsg(reply_fd, &mh, MSG_CMSG_CLOEXEC);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ECONNRESET;
                if ((size_t) n > STEP_MESSAGE_MAX || (mh.msg_flags & MSG_TRUNC))
                        return -EMSGSIZE;
                break;
        }

        return step_reply_parse(buf, (size_t) n, ret);
}
