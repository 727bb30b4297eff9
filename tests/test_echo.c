/* The echo test endpoint through the endpoint glue, the operation queue and
 * a link, without Lua. */
#include <stdlib.h>

#include "proto/echo.h"
#include "sim/ep.h"
#include "sim/link.h"
#include "sim/world.h"
#include "tests/unit.h"

typedef struct pair {
	sim_world w;
	sim_link *link;
	sim_ep *cli, *srv;
	int echoes, dones, fails, corrupt;
} pair;

static int on_event(void *ud, sim_ep *ep, const sim_ep_event *ev)
{
	pair *p = ud;
	(void)ep;
	if (strcmp(ev->name, "echo") == 0) {
		p->echoes++;
	} else if (strcmp(ev->name, "done") == 0) {
		p->dones++;
	} else if (strcmp(ev->name, "failed") == 0) {
		p->fails++;
	} else if (strcmp(ev->name, "corrupt") == 0) {
		p->corrupt++;
	}
	return SIM_EP_ANSWER_NONE;
}

static int setup(pair *p, uint64_t seed, const sim_link_params *lp,
		 const proto_echo_config *cfg)
{
	memset(p, 0, sizeof(*p));
	char err[128];
	if (sim_world_init(&p->w, seed, NULL) != 0) {
		return -1;
	}
	p->link = sim_link_new(&p->w, "l", lp);
	p->cli = sim_ep_new(&p->w, "client", &proto_echo_client_class,
			    proto_echo_make_client, (void *)cfg, 0, 0, err,
			    sizeof(err));
	p->srv = sim_ep_new(&p->w, "server", &proto_echo_server_class,
			    proto_echo_make_server, (void *)cfg, 0, 0, err,
			    sizeof(err));
	if (p->link == NULL || p->cli == NULL || p->srv == NULL) {
		return -1;
	}
	sim_ep_attach(p->cli, p->link, 0);
	sim_ep_attach(p->srv, p->link, 1);
	sim_ep_set_handler(p->cli, on_event, p);
	sim_ep_set_handler(p->srv, on_event, p);
	return 0;
}

static void teardown(pair *p)
{
	sim_ep_del(p->cli);
	sim_ep_del(p->srv);
	sim_link_del(p->link);
	sim_world_free(&p->w);
}

TEST(echo_ideal_link)
{
	sim_link_params lp;
	sim_link_params_default(&lp);
	lp.latency_ns = 20 * SIM_MS;
	proto_echo_config cfg;
	proto_echo_config_default(&cfg);
	pair p;
	REQUIRE(setup(&p, 1, &lp, &cfg) == 0);
	CHECK(sim_ep_call(p.cli, "start", NULL) > 0);
	CHECK(sim_ep_call(p.cli, "bogus", NULL) < 0);
	CHECK_STR(sim_ep_state(p.cli), "idle"); /* queued, not yet run */
	sim_sched_run(p.w.sched, NULL);
	CHECK_STR(sim_ep_state(p.cli), "done");
	CHECK_INT(p.echoes, 10);
	CHECK_INT(p.dones, 1);
	proto_echo_stats st;
	proto_echo_get_stats(sim_ep_impl(p.cli), &st);
	CHECK_INT(st.rtt_min_ns, 40 * SIM_MS);
	CHECK_INT(st.rtt_max_ns, 40 * SIM_MS);
	CHECK_INT(st.retransmits, 0);
	/* Last ping leaves at 90ms, its echo arrives at 130ms. */
	CHECK_INT(sim_sched_now(p.w.sched), 130 * SIM_MS);
	teardown(&p);
}

TEST(echo_retransmits_through_loss)
{
	sim_link_params lp;
	sim_link_params_default(&lp);
	lp.latency_ns = 10 * SIM_MS;
	lp.loss = 0.3;
	proto_echo_config cfg;
	proto_echo_config_default(&cfg);
	cfg.count = 40;
	cfg.max_retries = 12;
	pair p;
	REQUIRE(setup(&p, 5, &lp, &cfg) == 0);
	sim_ep_call(p.cli, "start", NULL);
	sim_sched_run(p.w.sched, NULL);
	CHECK_STR(sim_ep_state(p.cli), "done");
	proto_echo_stats st;
	proto_echo_get_stats(sim_ep_impl(p.cli), &st);
	CHECK_INT(st.echoed, 40);
	CHECK(st.retransmits > 5);
	teardown(&p);
}

TEST(echo_gives_up)
{
	sim_link_params lp;
	sim_link_params_default(&lp);
	lp.loss = 1.0;
	proto_echo_config cfg;
	proto_echo_config_default(&cfg);
	cfg.count = 1;
	cfg.max_retries = 3;
	cfg.rto_ns = 100 * SIM_MS;
	pair p;
	REQUIRE(setup(&p, 1, &lp, &cfg) == 0);
	sim_ep_call(p.cli, "start", NULL);
	sim_sched_run(p.w.sched, NULL);
	CHECK_STR(sim_ep_state(p.cli), "failed");
	CHECK_INT(p.fails, 1);
	/* Sent at 0, retransmitted at 100, 300, 700ms; gives up at 1500ms. */
	CHECK_INT(sim_sched_now(p.w.sched), 1500 * SIM_MS);
	teardown(&p);
}

TEST(echo_corruption_detected)
{
	sim_link_params lp;
	sim_link_params_default(&lp);
	lp.latency_ns = SIM_MS;
	lp.corrupt = 0.5;
	lp.corrupt_bits = 3;
	proto_echo_config cfg;
	proto_echo_config_default(&cfg);
	cfg.count = 50;
	cfg.max_retries = 20;
	pair p;
	REQUIRE(setup(&p, 2, &lp, &cfg) == 0);
	sim_ep_call(p.cli, "start", NULL);
	sim_sched_run(p.w.sched, NULL);
	CHECK_STR(sim_ep_state(p.cli), "done");
	CHECK(p.corrupt > 10);
	CHECK_INT(p.echoes, 50);
	teardown(&p);
}

TEST(echo_close_while_running)
{
	sim_link_params lp;
	sim_link_params_default(&lp);
	lp.latency_ns = 20 * SIM_MS;
	proto_echo_config cfg;
	proto_echo_config_default(&cfg);
	pair p;
	REQUIRE(setup(&p, 1, &lp, &cfg) == 0);
	sim_ep_call(p.cli, "start", NULL);
	sim_run_limits lim = {.until = 50 * SIM_MS};
	sim_sched_run(p.w.sched, &lim);
	sim_ep_call(p.cli, "close", NULL);
	sim_sched_run(p.w.sched, NULL);
	CHECK_STR(sim_ep_state(p.cli), "closed");
	CHECK(p.echoes < 10);
	teardown(&p);
}
