/*
 * util.c - the simulator's small helpers: allocation that dies on failure
 * (the simulator is a test program; running out of memory ends the run),
 * the hash functions behind the state machine's chain, and the trace and
 * violation reporters that every other file calls.
 */
#include "sim.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void
sim_die(const char *fmt, ...)
{
	va_list ap;

	fputs("dsc-sim: fatal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(111);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n != 0 ? n : 1);

	if (p == NULL)
		sim_die("out of memory (%zu bytes)", n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);

	if (p == NULL)
		sim_die("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	void *np;

	if (size != 0 && n > SIZE_MAX / size)
		sim_die("allocation overflow (%zu x %zu bytes)", n, size);
	np = realloc(p, n * size != 0 ? n * size : 1);
	if (np == NULL)
		sim_die("out of memory (%zu x %zu bytes)", n, size);
	return np;
}

void *
xmemdup(const void *p, size_t n)
{
	void *q;

	if (n == 0)
		return NULL;
	q = xmalloc(n);
	memcpy(q, p, n);
	return q;
}

/* Grows *p (of *cap elements of @size) to hold at least @need elements. */
void
sim_grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap;

	if (need <= *cap)
		return;
	ncap = *cap != 0 ? *cap : 8;
	while (ncap < need)
		ncap *= 2;
	*p = xreallocarray(*p, ncap, size);
	*cap = ncap;
}

/* splitmix64's finalizer: a bijective 64-bit mix. */
uint64_t
sim_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* FNV-1a over the entry's identity and payload, then mixed. */
uint64_t
sim_hash_entry(const struct raft_entry *e)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (uint32_t i = 0; i < e->len; i++) {
		h ^= e->data[i];
		h *= 0x100000001b3ull;
	}
	h ^= sim_mix64(e->index) ^ sim_mix64(e->term + 0x9e3779b97f4a7c15ull);
	h ^= (uint64_t)e->type << 56 ^ (uint64_t)e->len << 20;
	return sim_mix64(h);
}

/* The chain after an entry: a function of every entry up to it. */
uint64_t
sim_chain(uint64_t prev, uint64_t entry_hash)
{
	return sim_mix64(prev * 0x9e3779b97f4a7c15ull ^ entry_hash);
}

void
sim_trace(struct sim *g, const char *fmt, ...)
{
	va_list ap;

	if (!g->opt.trace)
		return;
	fprintf(g->opt.out, "%4llu.%06llu %7llu  ",
		(unsigned long long)(g->now / 1000000),
		(unsigned long long)(g->now % 1000000),
		(unsigned long long)g->step);
	va_start(ap, fmt);
	vfprintf(g->opt.out, fmt, ap);
	va_end(ap);
	fputc('\n', g->opt.out);
}

/* Records the first violation of a seed; the run stops after this step. */
void
sim_violation(struct sim *g, const char *fmt, ...)
{
	va_list ap;

	if (g->violated)
		return;
	g->violated = true;
	g->viol_step = g->step;
	va_start(ap, fmt);
	vsnprintf(g->why, sizeof(g->why), fmt, ap);
	va_end(ap);
	sim_trace(g, "VIOLATION: %s", g->why);
}
