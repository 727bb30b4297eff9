/* sim/time.h: the one integer clock. Virtual nanoseconds since the start of
 * a run. There is no wall clock in sim/ or proto/. */
#ifndef TLSIM_SIM_TIME_H
#define TLSIM_SIM_TIME_H

#include <stdint.h>

typedef int64_t sim_time; /* ns */

#define SIM_NS ((sim_time)1)
#define SIM_US ((sim_time)1000)
#define SIM_MS ((sim_time)1000000)
#define SIM_S ((sim_time)1000000000)
#define SIM_TIME_MAX INT64_MAX

/* sim_time_parse parses a duration such as "20ms", "1.5s", "250us", "7ns",
 * "3m" (minutes), "2h", "90d" or a bare integer (nanoseconds) into |*out|. Negative
 * values are rejected unless |allow_negative|. Returns 0 or SIM_EINVAL
 * (syntax) / SIM_ERANGE (negative or overflow). */
int sim_time_parse(const char *s, int allow_negative, sim_time *out);

/* sim_time_format writes |t| to |buf| in the largest unit that keeps it
 * exact up to 3 decimals ("1.500s", "20ms", "7ns"). Returns |buf|. */
char *sim_time_format(sim_time t, char *buf, unsigned long size);

#endif
