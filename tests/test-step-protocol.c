/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "step-protocol.h"

static int parse(const char *s, StepRequest *req, const char **error) {
        return step_request_parse(s, strlen(s), req, error);
}

static void test_parse_get_put(void **state) {
        StepRequest req = {};
        const char *error;

        assert_int_equal(parse("GET step reader.position", &req, &error), 0);
        assert_null(error);
        assert_int_equal(req.type, STEP_REQUEST_GET);
        assert_int_equal(req.scope, STEP_SCOPE_STEP);
        assert_string_equal(req.key, "reader.position");
        assert_null(req.value);
        step_request_done(&req);

        assert_int_equal(parse("GET job k", &req, NULL), 0);
        assert_int_equal(req.scope, STEP_SCOPE_JOB);
        step_request_done(&req);

        /* The value is the rest: spaces, newlines, shell syntax and UTF-8 arrive untouched. */
        assert_int_equal(parse("PUT job file a b  c\n$(touch X); rm -rf / \xc3\xa9", &req, NULL), 0);
        assert_int_equal(req.type, STEP_REQUEST_PUT);
        assert_int_equal(req.scope, STEP_SCOPE_JOB);
        assert_string_equal(req.key, "file");
        assert_string_equal(req.value, "a b  c\n$(touch X); rm -rf / \xc3\xa9");
        step_request_done(&req);

        /* Empty values, with and without the separator. */
        assert_int_equal(parse("PUT step k ", &req, NULL), 0);
        assert_string_equal(req.value, "");
        step_request_done(&req);
        assert_int_equal(parse("PUT step k", &req, NULL), 0);
        assert_string_equal(req.value, "");
        step_request_done(&req);
}

static void test_parse_counts(void **state) {
        StepRequest req = {};

        assert_int_equal(parse("COMMIT", &req, NULL), 0);
        assert_int_equal(req.type, STEP_REQUEST_COMMIT);
        assert_true(step_contribution_is_zero(&req.counts));
        step_request_done(&req);

        assert_int_equal(parse("COMMIT read=10 write=8 filter=2 read_skip=1 write_skip=3 process_skip=4 read=5",
                               &req, NULL), 0);
        assert_int_equal(req.counts.read_count, 15);
        assert_int_equal(req.counts.write_count, 8);
        assert_int_equal(req.counts.filter_count, 2);
        assert_int_equal(req.counts.read_skip_count, 1);
        assert_int_equal(req.counts.write_skip_count, 3);
        assert_int_equal(req.counts.process_skip_count, 4);
        step_request_done(&req);

        assert_int_equal(parse("ADD write=9223372036854775807", &req, NULL), 0);
        assert_int_equal(req.type, STEP_REQUEST_ADD);
        assert_int_equal(req.counts.write_count, INT64_MAX);
        step_request_done(&req);
}

static void test_parse_status_exit_code(void **state) {
        StepRequest req = {};

        assert_int_equal(parse("STATUS 42% done\tok", &req, NULL), 0);
        assert_int_equal(req.type, STEP_REQUEST_STATUS);
        assert_string_equal(req.text, "42% done\tok");
        step_request_done(&req);

        assert_int_equal(parse("STATUS", &req, NULL), 0);
        assert_string_equal(req.text, "");
        step_request_done(&req);

        assert_int_equal(parse("EXIT_CODE COMPLETED_WITH_SKIPS 3 lines skipped\nsee log", &req, NULL), 0);
        assert_int_equal(req.type, STEP_REQUEST_EXIT_CODE);
        assert_string_equal(req.exit_code, "COMPLETED_WITH_SKIPS");
        assert_string_equal(req.text, "3 lines skipped\nsee log");
        step_request_done(&req);

        assert_int_equal(parse("EXIT_CODE NOOP", &req, NULL), 0);
        assert_string_equal(req.exit_code, "NOOP");
        assert_null(req.text);
        step_request_done(&req);

        assert_int_equal(parse("TOTAL 10000", &req, NULL), 0);
        assert_int_equal(req.type, STEP_REQUEST_TOTAL);
        assert_int_equal(req.total, 10000);
        step_request_done(&req);

        assert_int_equal(parse("TOTAL 0", &req, NULL), 0);
        assert_int_equal(req.total, 0);
        step_request_done(&req);
}

static void test_parse_malformed(void **state) {
        static const struct {
                const char *text;
                int error;
        } bad[] = {
                { "",                                  -EINVAL   },
                { "get step k",                        -EINVAL   },   /* verbs are case-sensitive */
                { "FROB",                              -EINVAL   },
                { "GET",                               -EINVAL   },
                { "GET step",                          -EINVAL   },
                { "GET Step k",                        -EINVAL   },
                { "GET step ",                         -EINVAL   },
                { "GET step a b",                      -EINVAL   },   /* keys are one word */
                { "GET step k\n",                      -EINVAL   },   /* no trailing newline */
                { "GET  step k",                       -EINVAL   },
                { "PUT step",                          -EINVAL   },
                { "PUT step  value",                   -EINVAL   },
                { "PUT other k v",                     -EINVAL   },
                { "ADD",                               -EINVAL   },
                { "ADD read",                          -EINVAL   },
                { "ADD read=",                         -EINVAL   },
                { "ADD read=-1",                       -EINVAL   },
                { "ADD read=+1",                       -EINVAL   },
                { "ADD read=1x",                       -EINVAL   },
                { "ADD reads=1",                       -EINVAL   },
                { "ADD read=1  write=2",               -EINVAL   },
                { "COMMIT ",                           -EINVAL   },
                { "COMMIT read=9223372036854775808",   -ERANGE   },
                { "COMMIT read=9223372036854775807 read=1", -ERANGE },
                { "STATUS two\nlines",                 -EBADMSG  },
                { "STATUS bell\a",                     -EBADMSG  },
                { "TOTAL",                             -EINVAL   },
                { "TOTAL ",                            -EINVAL   },
                { "TOTAL -1",                          -EINVAL   },
                { "TOTAL 1 2",                         -EINVAL   },
                { "TOTAL read=1",                      -EINVAL   },
                { "TOTAL 9223372036854775808",         -ERANGE   },
                { "EXIT_CODE",                         -EINVAL   },
                { "EXIT_CODE  description",            -EINVAL   },
                { "EXIT_CODE CODE esc\x1b[31m",        -EBADMSG  },
                { "GET step \xc3",                     -EBADMSG  },   /* truncated UTF-8 */
                { "GET step \xc0\xaf",                 -EBADMSG  },   /* overlong */
                { "GET step \xed\xa0\x80",             -EBADMSG  },   /* surrogate */
                { "GET step \xf4\x90\x80\x80",         -EBADMSG  },   /* above U+10FFFF */
                { "PUT step k \xff",                   -EBADMSG  },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                StepRequest req = {};
                const char *error = NULL;

                assert_int_equal(parse(bad[i].text, &req, &error), bad[i].error);
                assert_non_null(error);
                assert_null(req.key);
        }
}

static void test_parse_limits(void **state) {
        _cleanup_free_ char *buf = malloc(STEP_MESSAGE_MAX + 16);
        StepRequest req = {};
        const char *error;
        size_t n;

        assert_non_null(buf);

        /* NUL bytes never make it into a C string. */
        assert_int_equal(step_request_parse("GET step a\0b", 12, &req, &error), -EBADMSG);

        /* A key of exactly the maximum, and one more. */
        n = (size_t) sprintf(buf, "GET step ");
        memset(buf + n, 'k', STEP_KEY_MAX);
        buf[n + STEP_KEY_MAX] = '\0';
        assert_int_equal(parse(buf, &req, NULL), 0);
        step_request_done(&req);
        strcat(buf, "k");
        assert_int_equal(parse(buf, &req, &error), -EMSGSIZE);

        /* The largest message, and one byte more. */
        n = (size_t) sprintf(buf, "PUT step k ");
        memset(buf + n, 'v', STEP_MESSAGE_MAX - n);
        assert_int_equal(step_request_parse(buf, STEP_MESSAGE_MAX, &req, NULL), 0);
        assert_int_equal(strlen(req.value), STEP_MESSAGE_MAX - n);
        step_request_done(&req);
        buf[STEP_MESSAGE_MAX] = 'v';
        assert_int_equal(step_request_parse(buf, STEP_MESSAGE_MAX + 1, &req, &error), -EMSGSIZE);

        /* Exit codes and descriptions fit their database columns. */
        n = (size_t) sprintf(buf, "EXIT_CODE ");
        memset(buf + n, 'C', STEP_EXIT_CODE_MAX + 1);
        buf[n + STEP_EXIT_CODE_MAX + 1] = '\0';
        assert_int_equal(parse(buf, &req, &error), -EMSGSIZE);
        n = (size_t) sprintf(buf, "EXIT_CODE FAILED ");
        memset(buf + n, 'd', STEP_EXIT_DESCRIPTION_MAX + 1);
        buf[n + STEP_EXIT_DESCRIPTION_MAX + 1] = '\0';
        assert_int_equal(parse(buf, &req, &error), -EMSGSIZE);
        n = (size_t) sprintf(buf, "STATUS ");
        memset(buf + n, 's', STEP_STATUS_MAX + 1);
        buf[n + STEP_STATUS_MAX + 1] = '\0';
        assert_int_equal(parse(buf, &req, &error), -EMSGSIZE);
}

/* Every byte string up to a small length, plus random noise: parse must never crash, leak or accept garbage
 * silently. Run under ASan this is a small fuzzer. */
static void test_parse_noise(void **state) {
        static const char alphabet[] = "GETPUADCOMISX_ stepjob=09\n\xc3\xa9\xff";
        char buf[64];
        unsigned seed = 1;

        for (unsigned i = 0; i < 200000; i++) {
                size_t n = (size_t) (rand_r(&seed) % sizeof(buf));
                StepRequest req = {};
                const char *error = NULL;
                int r;

                for (size_t k = 0; k < n; k++)
                        buf[k] = i % 2 ? alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)] : (char) rand_r(&seed);
                if (i % 3 == 0 && n >= 4)
                        memcpy(buf, i % 2 ? "PUT " : "ADD ", 4);

                r = step_request_parse(buf, n, &req, &error);
                if (r < 0)
                        assert_non_null(error);
                step_request_done(&req);
        }
}

static void test_format_round_trip(void **state) {
        StepRequest req = {
                .type = STEP_REQUEST_PUT,
                .scope = STEP_SCOPE_JOB,
                .key = (char *) "k",
                .value = (char *) "v w\nx",
        }, back = {};
        _cleanup_free_ char *msg = NULL;
        const char *error;
        size_t n;

        assert_int_equal(step_request_format(&req, &msg, &n, &error), 0);
        assert_string_equal(msg, "PUT job k v w\nx");
        assert_int_equal(n, strlen(msg));
        assert_int_equal(step_request_parse(msg, n, &back, NULL), 0);
        assert_string_equal(back.value, req.value);
        step_request_done(&back);
        msg = mfree(msg);

        req = (StepRequest) { .type = STEP_REQUEST_COMMIT, .counts = { .read_count = 3, .process_skip_count = 1 } };
        assert_int_equal(step_request_format(&req, &msg, &n, NULL), 0);
        assert_string_equal(msg, "COMMIT read=3 process_skip=1");
        msg = mfree(msg);

        req = (StepRequest) { .type = STEP_REQUEST_COMMIT };
        assert_int_equal(step_request_format(&req, &msg, &n, NULL), 0);
        assert_string_equal(msg, "COMMIT");
        msg = mfree(msg);

        req = (StepRequest) { .type = STEP_REQUEST_ADD };
        assert_int_equal(step_request_format(&req, &msg, &n, NULL), 0);
        assert_string_equal(msg, "ADD read=0");
        msg = mfree(msg);

        req = (StepRequest) { .type = STEP_REQUEST_EXIT_CODE, .exit_code = (char *) "FAILED", .text = (char *) "bad" };
        assert_int_equal(step_request_format(&req, &msg, &n, NULL), 0);
        assert_string_equal(msg, "EXIT_CODE FAILED bad");
        msg = mfree(msg);

        req = (StepRequest) { .type = STEP_REQUEST_TOTAL, .total = 1234 };
        assert_int_equal(step_request_format(&req, &msg, &n, NULL), 0);
        assert_string_equal(msg, "TOTAL 1234");
        msg = mfree(msg);
        req = (StepRequest) { .type = STEP_REQUEST_TOTAL, .total = -1 };
        assert_int_equal(step_request_format(&req, &msg, &n, NULL), -ERANGE);

        /* The sender checks like the receiver. */
        req = (StepRequest) { .type = STEP_REQUEST_GET, .scope = STEP_SCOPE_STEP, .key = (char *) "two words" };
        assert_int_equal(step_request_format(&req, &msg, &n, &error), -EINVAL);
        assert_non_null(error);
        assert_null(msg);
        req = (StepRequest) { .type = STEP_REQUEST_COMMIT, .counts = { .write_count = -1 } };
        assert_int_equal(step_request_format(&req, &msg, &n, &error), -ERANGE);
        req = (StepRequest) { .type = STEP_REQUEST_STATUS, .text = (char *) "a\nb" };
        assert_int_equal(step_request_format(&req, &msg, &n, &error), -EBADMSG);
}

static void test_replies(void **state) {
        static const struct {
                StepReply reply;
                const char *text;
        } table[] = {
                { { .type = STEP_REPLY_OK },                                              "OK"                },
                { { .type = STEP_REPLY_NOT_FOUND },                                       "NOTFOUND"          },
                { { .type = STEP_REPLY_VALUE, .text = (char *) "a b\nc" },                "VALUE a b\nc"      },
                { { .type = STEP_REPLY_VALUE, .text = (char *) "" },                      "VALUE "            },
                { { .type = STEP_REPLY_ERROR, .error = -EINVAL, .text = (char *) "bad" }, "ERR 22 bad"        },
        };
        static const char *const bad[] = { "", "OK ", "ok", "VALUE", "NOTFOUND x", "ERR", "ERR x y", "ERR 0 z",
                                           "ERR 99999 z", "ERR -1 z", "MAYBE" };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *msg = NULL;
                StepReply back = {};
                size_t n;

                assert_int_equal(step_reply_format(&table[i].reply, &msg, &n), 0);
                assert_string_equal(msg, table[i].text);
                assert_int_equal(step_reply_parse(msg, n, &back), 0);
                assert_int_equal(back.type, table[i].reply.type);
                assert_int_equal(back.error, table[i].reply.error);
                if (table[i].reply.text)
                        assert_string_equal(back.text, table[i].reply.text);
                step_reply_done(&back);
        }

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                StepReply back = {};

                assert_true(step_reply_parse(bad[i], strlen(bad[i]), &back) < 0);
                assert_null(back.text);
        }
}

static void test_contribution_add(void **state) {
        StepContribution a = { .read_count = 1 }, b = { .read_count = 2, .write_count = 3 },
                max = { .read_count = INT64_MAX };

        assert_int_equal(step_contribution_add(&a, &b), 0);
        assert_int_equal(a.read_count, 3);
        assert_int_equal(a.write_count, 3);
        assert_int_equal(step_contribution_add(&a, &max), -ERANGE);
        assert_int_equal(a.read_count, 3);      /* unchanged on failure */
        assert_false(step_contribution_is_zero(&a));
        assert_true(step_contribution_is_zero(&(StepContribution) {}));
}

static void test_channel_from_environment(void **state) {
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        int pair[2], fd;
        char buf[32];

        assert_int_equal(unsetenv(STEP_NOTIFY_FD_ENV), 0);
        assert_int_equal(step_channel_from_environment(&fd), -ENXIO);

        assert_int_equal(setenv(STEP_NOTIFY_FD_ENV, "x", 1), 0);
        assert_int_equal(step_channel_from_environment(&fd), -EBADF);
        assert_int_equal(setenv(STEP_NOTIFY_FD_ENV, "999999", 1), 0);
        assert_int_equal(step_channel_from_environment(&fd), -EBADF);

        /* stdin is whatever the test runner gave us, certainly not a SEQPACKET socket... */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        a = pair[0];
        b = pair[1];
        (void) snprintf(buf, sizeof(buf), "%i", a);
        assert_int_equal(setenv(STEP_NOTIFY_FD_ENV, buf, 1), 0);
        assert_int_equal(step_channel_from_environment(&fd), -ENOTSOCK);
        a = safe_close(a);
        b = safe_close(b);

        /* ...but this is. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
        a = pair[0];
        b = pair[1];
        (void) snprintf(buf, sizeof(buf), "%i", a);
        assert_int_equal(setenv(STEP_NOTIFY_FD_ENV, buf, 1), 0);
        assert_int_equal(step_channel_from_environment(&fd), 0);
        assert_int_equal(fd, a);
        assert_int_equal(unsetenv(STEP_NOTIFY_FD_ENV), 0);
}

/* A call whose request batchd drops (closing the passed reply socket unanswered) must fail, not hang. */
static void test_channel_call_dropped(void **state) {
        StepRequest req = { .type = STEP_REQUEST_COMMIT };
        StepReply reply = {};
        int pair[2];
        pid_t pid;
        int status;

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char buf[128];
                union {
                        struct cmsghdr cmsghdr;
                        uint8_t buf[CMSG_SPACE(sizeof(int))];
                } control = {};
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                                     .msg_controllen = sizeof(control) };

                /* Receive the request and its reply socket, then drop both; exit closes everything. */
                _exit(recvmsg(pair[1], &mh, 0) > 0 ? 0 : 1);
        }
        assert_int_equal(step_channel_call(pair[0], &req, &reply, NULL), -ECONNRESET);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        safe_close(pair[0]);
        safe_close(pair[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_get_put),
                cmocka_unit_test(test_parse_counts),
                cmocka_unit_test(test_parse_status_exit_code),
                cmocka_unit_test(test_parse_malformed),
                cmocka_unit_test(test_parse_limits),
                cmocka_unit_test(test_parse_noise),
                cmocka_unit_test(test_format_round_trip),
                cmocka_unit_test(test_replies),
                cmocka_unit_test(test_contribution_add),
                cmocka_unit_test(test_channel_from_environment),
                cmocka_unit_test(test_channel_call_dropped),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
