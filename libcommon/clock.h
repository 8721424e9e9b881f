/*
 * clock.h - the one monotonic clock every edge module reads (the pure core
 * never does: time enters it through ticks).
 */
#ifndef DSC_CLOCK_H
#define DSC_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC: for deadlines and ages, never dates. */
uint64_t dsc_mono_ms(void);

#endif
