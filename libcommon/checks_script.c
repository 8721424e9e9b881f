/*
 * checks_script.c - script probes: an argument vector run without a shell,
 * in its own process group, stdin from /dev/null, stdout and stderr into
 * one pipe read on the loop; exits are learnt from SIGCHLD, a libevent
 * signal event, and reaped by pid (never waitpid(-1): other children of
 * the process are not ours to reap).
 *
 * posix_spawnp does the fork and exec: glibc's uses CLONE_VFORK, reports a
 * failed exec (a missing script) as an error of the call, and resets the
 * signal mask and dispositions for the child, so a script never inherits
 * the agent's ignored SIGPIPE. Descriptors: every one we open is O_CLOEXEC,
 * and the child closes all above stderr besides.
 *
 * A run that is stopped while its script runs kills the process group and
 * hands the pid to the checker, which reaps it on a later SIGCHLD, or at
 * checker_free at the latest: no zombies.
 */
#define _GNU_SOURCE /* pipe2, posix_spawn_file_actions_addclosefrom_np */
#include "checks_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "duration.h"
#include "mem.h"

/* Reads per wakeup, so a chatty script cannot hold the loop. */
#define READS_PER_WAKEUP 16
#define READ_CHUNK       4096

static void
pipe_close(struct check_run *run)
{
	if (run->pipe_ev != NULL)
		event_free(run->pipe_ev);
	run->pipe_ev = NULL;
	if (run->pipe_fd >= 0)
		close(run->pipe_fd);
	run->pipe_fd = -1;
}

/*
 * Reads what the pipe holds, keeping the first output_max bytes and
 * dropping the rest (the script must never block on a full pipe). Closes
 * the pipe at end of file or on an error.
 */
static void
pipe_drain(struct check_run *run)
{
	char chunk[READ_CHUNK];
	size_t room, take;
	ssize_t n;
	int i;

	for (i = 0; i < READS_PER_WAKEUP && run->pipe_fd >= 0; i++) {
		n = read(run->pipe_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			pipe_close(run);
			return;
		}
		room = run->def.output_max - run->body.len;
		take = (size_t)n < room ? (size_t)n : room;
		/* Out of memory: the output is cut short, the probe goes on. */
		if (take > 0)
			(void)buf_add(&run->body, chunk, take);
	}
}

static void
pipe_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pipe_drain(arg);
}

/* The script exited with @wstatus: the probe's result. */
static void
script_done(struct check_run *run, int wstatus)
{
	enum check_status st = CHECK_CRITICAL;
	char msg[64 + DUR_FMT_MAX], d[DUR_FMT_MAX];
	int n;

	/* What the script wrote before it exited is in the pipe now; a
	 * background child still holding the pipe is not waited for. */
	pipe_drain(run);
	pipe_close(run);
	if (run->timed_out) {
		n = snprintf(msg, sizeof(msg), "Timed out (%s) running check",
		    dur_format(
		        (int64_t)run->def.timeout_ms * DUR_NS_PER_MS, d));
		buf_release(&run->body);
		run->timed_out = false;
		checks_probe_done(run, st, msg, (size_t)n, sizeof(msg));
		return;
	}
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
		st = CHECK_PASSING;
	else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 1)
		st = CHECK_WARNING;
	checks_probe_done(
	    run, st, run->body.p, run->body.len, run->def.output_max);
	buf_release(&run->body);
}

static void
reap(evutil_socket_t fd, short what, void *arg)
{
	struct checker *ck = arg;
	struct check_run *run;
	size_t i = 0;
	pid_t r;
	int ws;

	(void)fd;
	(void)what;
	for (run = ck->runs; run != NULL; run = run->next) {
		if (run->pid <= 0)
			continue;
		do
			r = waitpid(run->pid, &ws, WNOHANG);
		while (r < 0 && errno == EINTR);
		if (r == run->pid) {
			run->pid = -1;
			script_done(run, ws);
		}
	}
	while (i < ck->n_orphans) {
		r = waitpid(ck->orphans[i], NULL, WNOHANG);
		if (r == ck->orphans[i] || (r < 0 && errno == ECHILD))
			ck->orphans[i] = ck->orphans[--ck->n_orphans];
		else
			i++;
	}
}

int
checks_script_init(struct checker *ck, struct dsc_err *err)
{
	ck->sigchld = evsignal_new(ck->base, SIGCHLD, reap, ck);
	if (ck->sigchld == NULL || event_add(ck->sigchld, NULL) != 0)
		return dsc_errorf(
		    err, DSC_EIO, "unable to watch SIGCHLD for script checks");
	return 0;
}

void
checks_script_release(struct checker *ck)
{
	size_t i;

	/* Killed with SIGKILL already: these waits are short. */
	for (i = 0; i < ck->n_orphans; i++)
		while (waitpid(ck->orphans[i], NULL, 0) < 0 && errno == EINTR)
			;
	dsc_free(ck->orphans);
	ck->orphans = NULL;
	ck->n_orphans = ck->cap_orphans = 0;
	if (ck->sigchld != NULL)
		event_free(ck->sigchld);
	ck->sigchld = NULL;
}

static int
spawn(struct check_run *run, int out_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	int rc;

	sigemptyset(&none);
	sigfillset(&dfl);
	sigdelset(&dfl, SIGKILL);
	sigdelset(&dfl, SIGSTOP);
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		return rc;
	if ((rc = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	if ((rc = posix_spawn_file_actions_addopen(
	         &fa, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
	    (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)) == 0 &&
	    (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 2)) == 0 &&
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
	    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) == 0 &&
#endif
	    (rc = posix_spawnattr_setflags(&at,
	         POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	             POSIX_SPAWN_SETSIGDEF)) == 0 &&
	    (rc = posix_spawnattr_setpgroup(&at, 0)) == 0 &&
	    (rc = posix_spawnattr_setsigmask(&at, &none)) == 0 &&
	    (rc = posix_spawnattr_setsigdefault(&at, &dfl)) == 0)
		rc = posix_spawnp(pid, run->def.args[0], &fa, &at,
		    (char *const *)run->def.args, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

int
checks_script_start(struct check_run *run, struct dsc_err *err)
{
	int fds[2], rc;
	pid_t pid;

	run->timed_out = false;
	buf_release(&run->body);
	if (pipe2(fds, O_CLOEXEC) != 0)
		return dsc_errorf(err, DSC_EIO, "unable to run '%s': pipe: %s",
		    run->def.args[0], strerror(errno));
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0 ||
	    (run->pipe_ev = event_new(run->ck->base, fds[0],
	         EV_READ | EV_PERSIST, pipe_readable, run)) == NULL ||
	    event_add(run->pipe_ev, NULL) != 0) {
		close(fds[0]);
		close(fds[1]);
		if (run->pipe_ev != NULL)
			event_free(run->pipe_ev);
		run->pipe_ev = NULL;
		return dsc_errorf(err, DSC_EIO, "unable to run '%s': %s",
		    run->def.args[0], "cannot watch its output");
	}
	run->pipe_fd = fds[0];
	rc = spawn(run, fds[1], &pid);
	close(fds[1]);
	if (rc != 0) {
		pipe_close(run);
		return dsc_errorf(err, DSC_EIO, "unable to run '%s': %s",
		    run->def.args[0], strerror(rc));
	}
	run->pid = pid;
	return 0;
}

void
checks_script_timeout(struct check_run *run)
{
	if (run->pid <= 0)
		return;
	run->timed_out = true;
	kill(-run->pid, SIGKILL);
}

void
checks_script_cancel(struct check_run *run)
{
	struct checker *ck = run->ck;
	pid_t *grown;

	pipe_close(run);
	buf_release(&run->body);
	run->timed_out = false;
	if (run->pid <= 0)
		return;
	kill(-run->pid, SIGKILL);
	if (ck->n_orphans == ck->cap_orphans) {
		grown = dsc_reallocarray(
		    ck->orphans, ck->cap_orphans * 2 + 4, sizeof(*grown));
		if (grown == NULL) {
			/* Nowhere to remember it: reap it now; SIGKILL
			 * makes the wait short. */
			while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
				;
			run->pid = -1;
			return;
		}
		ck->orphans = grown;
		ck->cap_orphans = ck->cap_orphans * 2 + 4;
	}
	ck->orphans[ck->n_orphans++] = run->pid;
	run->pid = -1;
}
