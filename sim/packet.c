#include "sim/packet.h"

#include <stdlib.h>
#include <string.h>

#include "sim/err.h"

sim_packet *sim_packet_new(const void *data, size_t len)
{
	sim_packet *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return NULL;
	}
	p->data = malloc(len ? len : 1);
	if (p->data == NULL) {
		free(p);
		return NULL;
	}
	if (data != NULL) {
		memcpy(p->data, data, len);
	} else {
		memset(p->data, 0, len);
	}
	p->len = len;
	p->dup_of = -1;
	p->id = -1;
	p->proto = "raw";
	return p;
}

sim_packet *sim_packet_clone(const sim_packet *p)
{
	sim_packet *c = sim_packet_new(p->data, p->len);
	if (c == NULL) {
		return NULL;
	}
	uint8_t *data = c->data;
	*c = *p;
	c->data = data;
	c->subs = NULL;
	c->nsubs = 0;
	for (int i = 0; i < p->nsubs; i++) {
		if (sim_packet_add_sub(c, &p->subs[i]) != 0) {
			sim_packet_del(c);
			return NULL;
		}
	}
	return c;
}

int sim_packet_add_sub(sim_packet *p, const sim_packet_sub *sub)
{
	if (p->nsubs >= SIM_PACKET_SUBS_MAX) {
		return SIM_ELIMIT;
	}
	if (p->subs == NULL) {
		p->subs = malloc(SIM_PACKET_SUBS_MAX * sizeof(*p->subs));
		if (p->subs == NULL) {
			return SIM_ENOMEM;
		}
	}
	p->subs[p->nsubs++] = *sub;
	return 0;
}

void sim_packet_del(sim_packet *p)
{
	if (p == NULL) {
		return;
	}
	free(p->subs);
	free(p->data);
	free(p);
}
