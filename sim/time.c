#include "sim/time.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "sim/err.h"

int sim_time_parse(const char *s, int allow_negative, sim_time *out)
{
	const char *p = s;
	int neg = 0;
	int64_t whole = 0, frac = 0, frac_div = 1;
	int digits = 0;

	if (s == NULL) {
		return SIM_EINVAL;
	}
	while (isspace((unsigned char)*p)) {
		p++;
	}
	if (*p == '-' || *p == '+') {
		neg = *p == '-';
		p++;
	}
	while (isdigit((unsigned char)*p)) {
		if (whole > (INT64_MAX - 9) / 10) {
			return SIM_ERANGE;
		}
		whole = whole * 10 + (*p - '0');
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			if (frac_div < 1000000000) {
				frac = frac * 10 + (*p - '0');
				frac_div *= 10;
			}
			p++;
			digits++;
		}
	}
	if (digits == 0) {
		return SIM_EINVAL;
	}
	while (isspace((unsigned char)*p)) {
		p++;
	}
	sim_time unit;
	if (*p == '\0' || strcmp(p, "ns") == 0) {
		unit = SIM_NS;
	} else if (strcmp(p, "us") == 0) {
		unit = SIM_US;
	} else if (strcmp(p, "ms") == 0) {
		unit = SIM_MS;
	} else if (strcmp(p, "s") == 0) {
		unit = SIM_S;
	} else if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0) {
		unit = 60 * SIM_S;
	} else if (strcmp(p, "h") == 0) {
		unit = 3600 * SIM_S;
	} else if (strcmp(p, "d") == 0) {
		unit = 86400 * SIM_S;
	} else {
		return SIM_EINVAL;
	}
	if (whole > INT64_MAX / unit) {
		return SIM_ERANGE;
	}
	sim_time v = whole * unit + (frac * unit) / frac_div;
	if (neg) {
		if (!allow_negative && v != 0) {
			return SIM_ERANGE;
		}
		v = -v;
	}
	*out = v;
	return 0;
}

char *sim_time_format(sim_time t, char *buf, unsigned long size)
{
	const char *sign = t < 0 ? "-" : "";
	uint64_t a = t < 0 ? (uint64_t)0 - (uint64_t)t : (uint64_t)t;
	static const struct {
		uint64_t ns;
		const char *name;
	} units[] = {{1000000000ULL, "s"}, {1000000ULL, "ms"}, {1000ULL, "us"}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (a >= units[i].ns) {
			uint64_t w = a / units[i].ns;
			uint64_t r = a % units[i].ns;
			uint64_t milli = r / (units[i].ns / 1000);
			if (milli == 0) {
				snprintf(buf, size, "%s%llu%s", sign,
					 (unsigned long long)w, units[i].name);
			} else {
				char f[24];
				snprintf(f, sizeof(f), "%03llu",
					 (unsigned long long)milli);
				for (int k = 2; k > 0 && f[k] == '0'; k--) {
					f[k] = '\0';
				}
				snprintf(buf, size, "%s%llu.%s%s", sign,
					 (unsigned long long)w, f,
					 units[i].name);
			}
			return buf;
		}
	}
	snprintf(buf, size, "%s%lluns", sign, (unsigned long long)a);
	return buf;
}
