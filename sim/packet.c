#include "sim/packet.h"

#include <stdlib.h>
#include <string.h>

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
	return c;
}

void sim_packet_del(sim_packet *p)
{
	if (p == NULL) {
		return;
	}
	free(p->data);
	free(p);
}
