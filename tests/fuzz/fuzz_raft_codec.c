/*
 * fuzz_raft_codec.c - libFuzzer target for the raft message decoder.
 *
 * Decodes arbitrary bytes; whatever decodes must re-encode to exactly the
 * same bytes (the format is canonical), and decode again to the same
 * message. Anything else aborts, and so does any sanitizer report.
 *
 * Build and run for 60 s from the top of the tree (line comments, since a
 * glob inside a block comment draws -Wcomment):
 */
// clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L -Ilibcommon tests/fuzz/fuzz_raft_codec.c libcommon/*.c -ljansson -lsodium -o /tmp/fuzz_raft_codec
// mkdir -p /tmp/corpus-raft && /tmp/fuzz_raft_codec -max_total_time=60 -max_len=4096 /tmp/corpus-raft
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "mem.h"
#include "raft_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
	struct raft_msg_storage st2 = RAFT_MSG_STORAGE_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	struct raft_msg m, m2;
	struct buf out = BUF_INIT, out2 = BUF_INIT;
	int rc;

	rc = raft_msg_decode(data, size, &m, &st, &err);
	if (rc != 0) {
		/* Rejections are DSC_EPROTO with a message, nothing else. */
		if (rc != DSC_EPROTO || err.code != DSC_EPROTO ||
		    err.msg[0] == '\0')
			abort();
		goto out;
	}
	if (raft_msg_encode(&m, &out, &err) != 0)
		abort();	/* decoded but not encodable */
	if (out.len != size || memcmp(out.p, data, size) != 0)
		abort();	/* not canonical */
	if (raft_msg_encoded_size(&m) != size)
		abort();
	/* The copy decodes the same way: nothing hangs on @data's address. */
	if (raft_msg_decode(out.p, out.len, &m2, &st2, &err) != 0)
		abort();
	if (raft_msg_encode(&m2, &out2, &err) != 0 || out2.len != size ||
	    memcmp(out2.p, data, size) != 0)
		abort();
out:
	buf_release(&out);
	buf_release(&out2);
	raft_msg_storage_release(&st);
	raft_msg_storage_release(&st2);
	return 0;
}
