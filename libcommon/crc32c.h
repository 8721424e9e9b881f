/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of WAL and snapshot records.
 *
 * crc32c() uses the SSE4.2 crc32 instruction when the CPU has it and a
 * slicing-by-8 table otherwise; both give identical results. To checksum in
 * pieces, pass the previous result as @crc (start from 0).
 */
#ifndef DSC_CRC32C_H
#define DSC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *data, size_t n);
/* The portable path, always; for tests that compare the two. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t n);
/* 1 when crc32c() takes the hardware path on this CPU. */
int crc32c_hw_available(void);

#endif
