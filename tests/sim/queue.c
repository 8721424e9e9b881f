/*
 * queue.c - the event queue: a binary min-heap ordered by virtual time,
 * ties broken by insertion order, so the schedule is a pure function of
 * the seed.
 */
#include "sim.h"

#include <stdlib.h>

static bool
before(const struct sim_event *a, const struct sim_event *b)
{
	return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

void
queue_push(struct sim_queue *q, const struct sim_event *e)
{
	size_t i;

	sim_grow((void **)&q->ev, &q->cap, q->n + 1, sizeof(*q->ev));
	i = q->n++;
	q->ev[i] = *e;
	q->ev[i].seq = q->seq++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		struct sim_event t;

		if (!before(&q->ev[i], &q->ev[up]))
			break;
		t = q->ev[i];
		q->ev[i] = q->ev[up];
		q->ev[up] = t;
		i = up;
	}
}

bool
queue_pop(struct sim_queue *q, struct sim_event *e)
{
	size_t i = 0;

	if (q->n == 0)
		return false;
	*e = q->ev[0];
	q->ev[0] = q->ev[--q->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct sim_event t;

		if (l < q->n && before(&q->ev[l], &q->ev[m]))
			m = l;
		if (r < q->n && before(&q->ev[r], &q->ev[m]))
			m = r;
		if (m == i)
			break;
		t = q->ev[i];
		q->ev[i] = q->ev[m];
		q->ev[m] = t;
		i = m;
	}
	return true;
}

/* Frees the queue and every message still in flight. */
void
queue_release(struct sim_queue *q)
{
	for (size_t i = 0; i < q->n; i++)
		if (q->ev[i].kind == EV_MSG)
			net_env_free(q->ev[i].env);
	free(q->ev);
	q->ev = NULL;
	q->n = q->cap = 0;
}
