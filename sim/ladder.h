/* sim/ladder.h: `tlsim report` in a terminal: the run's summary, its
 * expectations, the race queries' verdicts and a ladder diagram.
 *
 * The ladder has one column (lane) per endpoint and virtual time down the
 * side (ms with microsecond precision, printed when it changes). Each
 * datagram or segment is an arrow from its sender's lane to its
 * receiver's, labelled with its id, type, contents, size and fate, and
 * the time it arrives; a lost one stops in an X half-way; the packets
 * coalesced in a QUIC datagram follow it, one line each, and the sender's
 * handshake state when it changes. Operation-queue steps (consecutive
 * steps of one operation at one time on one line, each with the queue
 * depth after it), TLS rows and endpoint events are written in their
 * endpoint's lane: right of it, or left of it for the rightmost lane.
 * Script output and failed expectations span the ladder. */
#ifndef TLSIM_SIM_LADDER_H
#define TLSIM_SIM_LADDER_H

#include <stdio.h>

#include "sim/report.h"

typedef struct sim_ladder_opts {
	int width; /* columns (40 to 1000; others are clamped); 0: $COLUMNS,
		      else the terminal's, else 100 */
	int color; /* 1 always, 0 never, -1 when |f| is a terminal (and
		      NO_COLOR is unset and TERM is not "dumb") */
	int ascii; /* draw with ASCII only (default: box-drawing UTF-8) */
} sim_ladder_opts;

/* sim_ladder_print writes the report |r| to |f|. */
void sim_ladder_print(FILE *f, const sim_report *r, const sim_ladder_opts *o);

#endif
