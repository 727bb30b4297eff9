/* tests/fuzz/qwire_fuzz.h: the proto/quic_wire fuzz harness, shared by the
 * libFuzzer target (tests/fuzz/qwire_fuzz.c, built with -DTLSIM_FUZZ=ON)
 * and the unit tests (tests/test_qwire.c), which feed it generated inputs
 * and the seed corpus in every build. */
#ifndef TLSIM_TESTS_FUZZ_QWIRE_FUZZ_H
#define TLSIM_TESTS_FUZZ_QWIRE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "proto/quic_wire.h"

/* qwire_fuzz_check runs one input through the parsers and checks their
 * properties. Input: byte 0 chooses the mode (bit 7 set: the rest is a
 * datagram of coalesced packets, whose payloads are taken as unprotected
 * frame lists; clear: the rest is one frame list) and, in its low five
 * bits modulo 21, the DCID length of short headers. Returns NULL, or a
 * static description of the first property that failed (a parsed header
 * or frame that does not survive write-then-parse, a summary that
 * disagrees with the parser, bounds...). Sets |*clean| (if not NULL) to 1
 * when every header and frame parsed without error, else 0. The input is
 * read only within |size| bytes; allocates scratch buffers of exact
 * sizes, so that AddressSanitizer sees any overrun. */
const char *qwire_fuzz_check(const uint8_t *data, size_t size, int *clean);

/* qwire_fuzz_frame_eq returns 1 if |a| and |b| describe the same frame:
 * equal fields for their type, data compared by content, STREAM types by
 * their FIN bit only (the writer chooses LEN and OFF). */
int qwire_fuzz_frame_eq(const proto_qwire_frame *a, const proto_qwire_frame *b);

#endif
