/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"
#include "repository.h"

/* The private channel between a running step and batchd: one SOCK_SEQPACKET socket per step, one text message
 * per packet, every request answered by exactly one reply. docs/step-protocol.md is the normative description;
 * this module is the single implementation of its grammar, shared by the daemon and batchctl. */

#define STEP_NOTIFY_FD_ENV "BATCH_NOTIFY_FD"
/* The step always finds its end of the channel here, so BATCH_NOTIFY_FD is "3" unless someone moved it. */
#define STEP_NOTIFY_FD 3

/* Upper bound of one request or reply, in bytes. Anything longer is refused with EMSGSIZE. */
#define STEP_MESSAGE_MAX (64U * 1024U)
#define STEP_KEY_MAX 256U
#define STEP_STATUS_MAX 1024U
/* Column sizes of EXIT_CODE and EXIT_MESSAGE, so an exit status always fits without truncation. */
#define STEP_EXIT_CODE_MAX ((size_t) EXIT_CODE_MAX)
#define STEP_EXIT_DESCRIPTION_MAX ((size_t) EXIT_MESSAGE_MAX)

typedef enum StepRequestType {
        STEP_REQUEST_GET,
        STEP_REQUEST_PUT,
        STEP_REQUEST_ADD,
        STEP_REQUEST_COMMIT,
        STEP_REQUEST_STATUS,
        STEP_REQUEST_EXIT_CODE,
        STEP_REQUEST_TOTAL,
        _STEP_REQUEST_TYPE_MAX,
        _STEP_REQUEST_TYPE_INVALID = -EINVAL,
} StepRequestType;

typedef enum StepScope {
        STEP_SCOPE_STEP,
        STEP_SCOPE_JOB,
        _STEP_SCOPE_MAX,
        _STEP_SCOPE_INVALID = -EINVAL,
} StepScope;

typedef struct StepRequest {
        StepRequestType type;
        StepScope scope;                /* GET, PUT */
        char *key;                      /* GET, PUT */
        char *value;                    /* PUT; never NULL after a successful parse */
        StepContribution counts;        /* ADD, COMMIT */
        char *text;                     /* STATUS (may be empty), EXIT_CODE description (may be NULL) */
        char *exit_code;                /* EXIT_CODE */
        int64_t total;                  /* TOTAL: the items the step will read in all; 0: not known */
} StepRequest;

typedef enum StepReplyType {
        STEP_REPLY_OK,
        STEP_REPLY_VALUE,               /* GET found the key; text is the value */
        STEP_REPLY_NOT_FOUND,           /* GET did not */
        STEP_REPLY_ERROR,               /* error is a negative errno, text a message */
        _STEP_REPLY_TYPE_MAX,
        _STEP_REPLY_TYPE_INVALID = -EINVAL,
} StepReplyType;

typedef struct StepReply {
        StepReplyType type;
        int error;
        char *text;
} StepReply;

const char *step_request_type_to_string(StepRequestType t) _pure_;
StepRequestType step_request_type_from_string(const char *s) _pure_;
const char *step_scope_to_string(StepScope s) _pure_;
StepScope step_scope_from_string(const char *s) _pure_;

/* Frees the members, not the struct: requests and replies live on the stack. */
void step_request_done(StepRequest *req);
void step_reply_done(StepReply *reply);

/* Parses one packet. The buffer need not be NUL-terminated and may hold anything: malformed input gives
 * -EINVAL (grammar), -EBADMSG (not UTF-8, NUL or control characters), -EMSGSIZE (a limit) or -ERANGE (a count
 * overflows int64), and *ret_error a static explanation suitable for an ERR reply. */
int step_request_parse(const void *buf, size_t size, StepRequest *ret, const char **ret_error);
/* Builds the packet for a request, checking it exactly as the receiving side will. The result is
 * NUL-terminated for convenience; *ret_size excludes the NUL. */
int step_request_format(const StepRequest *req, char **ret, size_t *ret_size, const char **ret_error);

int step_reply_parse(const void *buf, size_t size, StepReply *ret);
int step_reply_format(const StepReply *reply, char **ret, size_t *ret_size);

/* Adds b to a, refusing (-ERANGE) to overflow any counter; a is unchanged on failure. */
int step_contribution_add(StepContribution *a, const StepContribution *b);
bool step_contribution_is_zero(const StepContribution *c) _pure_;

/* ---- client side, used by batchctl ---- */

/* Finds the channel through $BATCH_NOTIFY_FD. -ENXIO when the variable is unset (not inside a step), -EBADF
 * when it names no open descriptor, -ENOTSOCK when that is not a SOCK_SEQPACKET socket. */
int step_channel_from_environment(int *ret_fd);
/* Sends one request and waits for its reply. The reply travels over a private socket passed along with the
 * request, so concurrent callers sharing the channel never receive each other's replies. -ECONNRESET when
 * batchd dropped the request without answering (e.g. the step is being torn down). */
int step_channel_call(int fd, const StepRequest *req, StepReply *ret, const char **ret_error);
