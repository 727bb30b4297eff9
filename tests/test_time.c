#include "sim/err.h"
#include "sim/time.h"
#include "tests/unit.h"

TEST(time_parse)
{
	sim_time t;
	CHECK_INT(sim_time_parse("20ms", 0, &t), 0);
	CHECK_INT(t, 20 * SIM_MS);
	CHECK_INT(sim_time_parse("1.5s", 0, &t), 0);
	CHECK_INT(t, 1500 * SIM_MS);
	CHECK_INT(sim_time_parse("250us", 0, &t), 0);
	CHECK_INT(t, 250 * SIM_US);
	CHECK_INT(sim_time_parse("7", 0, &t), 0);
	CHECK_INT(t, 7);
	CHECK_INT(sim_time_parse("2m", 0, &t), 0);
	CHECK_INT(t, 120 * SIM_S);
	CHECK_INT(sim_time_parse("0.000000001s", 0, &t), 0);
	CHECK_INT(t, 1);
	CHECK_INT(sim_time_parse("-1ms", 0, &t), SIM_ERANGE);
	CHECK_INT(sim_time_parse("-1ms", 1, &t), 0);
	CHECK_INT(t, -SIM_MS);
	CHECK_INT(sim_time_parse("20 parsecs", 0, &t), SIM_EINVAL);
	CHECK_INT(sim_time_parse("ms", 0, &t), SIM_EINVAL);
	CHECK_INT(sim_time_parse("", 0, &t), SIM_EINVAL);
	CHECK_INT(sim_time_parse("99999999999999999999s", 0, &t), SIM_ERANGE);
	CHECK_INT(sim_time_parse("10000000000s", 0, &t), SIM_ERANGE);
}

TEST(time_format)
{
	char b[64];
	CHECK_STR(sim_time_format(20 * SIM_MS, b, sizeof(b)), "20ms");
	CHECK_STR(sim_time_format(1500 * SIM_MS, b, sizeof(b)), "1.5s");
	CHECK_STR(sim_time_format(7, b, sizeof(b)), "7ns");
	CHECK_STR(sim_time_format(0, b, sizeof(b)), "0ns");
	CHECK_STR(sim_time_format(-SIM_US, b, sizeof(b)), "-1us");
	CHECK_STR(sim_time_format(1234567, b, sizeof(b)), "1.234ms");
}

TEST(err_strings)
{
	CHECK_STR(sim_strerror(0), "success");
	CHECK_STR(sim_strerror(SIM_EBUSY), "trace is locked by another writer");
	CHECK_STR(sim_strerror(12345), "unknown error");
	CHECK(SIM_ENOMEM < 0 && SIM_EINTERNAL < 0);
}
