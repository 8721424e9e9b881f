/*
 * walcheck - check a dsc data dir's WAL and snapshots without changing them.
 *
 *	walcheck [-qv] datadir
 *
 * Loads the data dir exactly as dsc-server would on start (wal_check(), so
 * nothing is created, repaired or deleted) and prints what it found: the
 * snapshot, the hard state, the range of entries and the segments, and the
 * repair the server would make. -v adds one line per entry (index, term,
 * type, bytes); -q prints only errors. For torn-write and power-loss tests
 * (TESTING.md 4(f), L2) and for an operator looking at a server that will
 * not start.
 *
 * Exit status (STYLE.md 2.7): 0 the data dir loads as it is; 1 it loads, but
 * only after the repair printed (a torn tail); 2 usage; 3 a temporary failure
 * (I/O, memory); 4 damaged, so the server would refuse it (the message on
 * stderr names the file and offset), or no data dir there.
 *
 * Build (not part of `make` yet):
 *	cc -std=c17 -D_POSIX_C_SOURCE=200809L -Ilibcommon \
 *	    tests/tools/walcheck.c build/libcommon.a -o build/walcheck
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "raft.h"
#include "wal.h"

#define USAGE "walcheck [-qv] datadir"

static const char *prog = "walcheck";

static void
print_summary(const char *dir, const struct wal_loaded *ld,
    const struct wal_stat *st)
{
	const struct raft_snapshot *s = &ld->snapshot;

	printf("%s:\n", dir);
	if (s->meta.index > 0)
		printf("  snapshot\tindex %" PRIu64 " term %" PRIu64
		    ", %zu bytes, %" PRIu32 " servers\n", s->meta.index,
		    s->meta.term, s->len, s->meta.conf.n);
	else
		printf("  snapshot\tnone\n");
	printf("  hard state\tterm %" PRIu64 " vote %" PRIu64 " commit %"
	    PRIu64 "\n", ld->hard.term, ld->hard.vote, ld->hard.commit);
	if (ld->n_entries > 0)
		printf("  entries\t%" PRIu64 "..%" PRIu64 " (%zu)\n",
		    ld->entries[0].index,
		    ld->entries[ld->n_entries - 1].index, ld->n_entries);
	else
		printf("  entries\tnone (next index %" PRIu64 ")\n",
		    st->next_index);
	printf("  segments\t%zu", st->n_segments);
	if (st->n_segments > 0)
		printf(", last 'wal/%s' ends at offset %" PRIu64, st->segment,
		    st->offset);
	printf("\n");
}

int
main(int argc, char *argv[])
{
	struct dsc_err err = DSC_ERR_INIT;
	struct wal_loaded ld;
	struct wal_stat st;
	int opt, quiet = 0, verbose = 0, rv;

	while ((opt = getopt(argc, argv, "qv")) != -1) {
		switch (opt) {
		case 'q':
			quiet = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(stderr, "usage: %s\n", USAGE);
			return DSC_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: %s\n", USAGE);
		return DSC_EXIT_USAGE;
	}
	rv = wal_check(argv[optind], &ld, &st, &err);
	if (rv != 0) {
		fprintf(stderr, "%s: error: %s\n", prog, dsc_err_msg(&err));
		/* No data dir at all is not a negative answer here. */
		return rv == DSC_ENOTFOUND ? DSC_EXIT_PERM : dsc_exit_class(rv);
	}
	if (!quiet) {
		print_summary(argv[optind], &ld, &st);
		for (size_t i = 0; verbose && i < ld.n_entries; i++)
			printf("  %" PRIu64 "\t%" PRIu64 "\t%u\t%" PRIu32 "\n",
			    ld.entries[i].index, ld.entries[i].term,
			    ld.entries[i].type, ld.entries[i].len);
	}
	if (ld.repair[0] != '\0')
		fprintf(stderr, "%s: repair needed: %s\n", prog, ld.repair);
	rv = ld.repair[0] != '\0' ? DSC_EXIT_NO : DSC_EXIT_OK;
	wal_loaded_release(&ld);
	return rv;
}
