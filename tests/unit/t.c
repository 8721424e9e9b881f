/*
 * t.c - runner for t.h: registration, failure reporting, the summary line.
 */
#include "t.h"

#include <stdarg.h>

struct t_case *t_cases, **t_cases_tail = &t_cases;
jmp_buf t_jmp;
int t_failed_checks;

void
t_register(struct t_case *c)
{
	c->next = NULL;
	*t_cases_tail = c;
	t_cases_tail = &c->next;
}

void
t_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "  %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	t_failed_checks++;
	longjmp(t_jmp, 1);
}

static bool
selected(const char *name, int argc, char **argv)
{
	if (argc <= 1)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

/*
 * Runs one case; true when it passed. setjmp lives here, in a frame with no
 * locals that change after it, so nothing can be clobbered by the longjmp
 * out of a failed check.
 */
static bool
run_one(struct t_case *c)
{
	int before = t_failed_checks;

	if (setjmp(t_jmp) == 0)
		c->fn();
	return t_failed_checks == before;
}

int
t_main(int argc, char **argv)
{
	unsigned passed = 0, failed = 0;

	if (argc == 2 && strcmp(argv[1], "-l") == 0) {
		for (struct t_case *c = t_cases; c != NULL; c = c->next)
			printf("%s\n", c->name);
		return 0;
	}
	for (struct t_case *c = t_cases; c != NULL; c = c->next) {
		if (!selected(c->name, argc, argv))
			continue;
		if (!run_one(c)) {
			failed++;
			fprintf(stderr, "FAIL %s\n", c->name);
		} else {
			passed++;
			if (getenv("T_VERBOSE") != NULL)
				fprintf(stderr, "ok   %s\n", c->name);
		}
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
