#include "sim/err.h"

const char *sim_strerror(int err)
{
	switch (err) {
	case SIM_OK:
		return "success";
#define XX(name, msg)                                                        \
	case SIM_E##name:                                                    \
		return msg;
		SIM_ERRNO_MAP(XX)
#undef XX
	default:
		return "unknown error";
	}
}
