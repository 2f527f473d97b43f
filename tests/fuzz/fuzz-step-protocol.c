/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* step_request_parse() and step_reply_parse(): the packets a step (any program, hostile or broken) sends
 * batchd, and batchd's replies as batchctl reads them. A packet that parses must format back into a packet
 * that parses to the same request or reply. */

#include "fuzz.h"
#include "step-protocol.h"

static void check_request(const uint8_t *data, size_t size) {
        _cleanup_(step_request_done) StepRequest req = {}, back = {};
        _cleanup_free_ char *packet = NULL;
        const char *error = NULL;
        size_t n;

        if (step_request_parse(data, size, &req, &error) < 0) {
                fuzz_assert(error);
                return;
        }
        fuzz_assert(step_request_format(&req, &packet, &n, &error) == 0);
        fuzz_assert(step_request_parse(packet, n, &back, &error) == 0);
        fuzz_assert(back.type == req.type);
        fuzz_assert(back.scope == req.scope);
        fuzz_assert(streq_ptr_safe(back.key, req.key));
        fuzz_assert(streq_ptr_safe(back.value, req.value));
        fuzz_assert(streq_ptr_safe(back.text, req.text));
        fuzz_assert(streq_ptr_safe(back.exit_code, req.exit_code));
        fuzz_assert(memcmp(&back.counts, &req.counts, sizeof(req.counts)) == 0);
}

static void check_reply(const uint8_t *data, size_t size) {
        _cleanup_(step_reply_done) StepReply reply = {}, back = {};
        _cleanup_free_ char *packet = NULL;
        size_t n;

        if (step_reply_parse(data, size, &reply) < 0)
                return;
        fuzz_assert(step_reply_format(&reply, &packet, &n) == 0);
        fuzz_assert(step_reply_parse(packet, n, &back) == 0);
        fuzz_assert(back.type == reply.type);
        fuzz_assert(back.error == reply.error);
        fuzz_assert(streq_ptr_safe(back.text, reply.text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        check_request(data, size);
        check_reply(data, size);
        return 0;
}
