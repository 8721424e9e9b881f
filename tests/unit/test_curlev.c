/*
 * test_curlev.c - libcurl's multi interface on a libevent loop, against an
 * evhttp server on 127.0.0.1 with a port chosen by the kernel: transfers
 * end through the done callback, several run at once, one that is removed
 * before it ends is never reported, and curlev_free with transfers in
 * flight leaks nothing (the sanitizer build checks that).
 */
#include "curlev.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "err.h"
#include "loop_harness.h"
#include "t.h"

#define N_EASY 8

static struct {
	struct loop_fx lf;
	struct curlev *cv;
	int done;
	CURLcode rc[N_EASY];
	CURL *easy[N_EASY];
	char body[N_EASY][64];
	size_t body_len[N_EASY];
} fx;

static void
serve(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b;

	(void)arg;
	if (strcmp(evhttp_request_get_uri(req), "/slow") == 0)
		return; /* never answered */
	b = evbuffer_new();
	evbuffer_add_printf(b, "you asked %s", evhttp_request_get_uri(req));
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	size_t i = (size_t)(intptr_t)arg;

	(void)size;
	if (fx.body_len[i] + n >= sizeof(fx.body[i]))
		return 0;
	memcpy(fx.body[i] + fx.body_len[i], p, n);
	fx.body_len[i] += n;
	return n;
}

static void
on_done(CURL *easy, CURLcode rc, void *arg)
{
	size_t i;

	T_ASSERT(arg == &fx);
	for (i = 0; i < N_EASY; i++) {
		if (fx.easy[i] == easy) {
			fx.rc[i] = rc;
			curlev_remove(fx.cv, easy);
			curl_easy_cleanup(easy);
			fx.easy[i] = NULL;
			fx.done++;
			return;
		}
	}
	T_FAIL("done for a transfer not started");
}

static void
teardown(void)
{
	size_t i;

	curlev_free(fx.cv);
	fx.cv = NULL;
	for (i = 0; i < N_EASY; i++) {
		if (fx.easy[i] != NULL)
			curl_easy_cleanup(fx.easy[i]);
		fx.easy[i] = NULL;
	}
	loop_fx_close(&fx.lf);
	curl_global_cleanup();
}

static void
setup(void)
{
	struct dsc_err err = DSC_ERR_INIT;

	teardown();
	memset(&fx, 0, sizeof(fx));
	T_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	loop_fx_open(&fx.lf, serve, NULL);
	fx.cv = curlev_new(fx.lf.base, on_done, &fx, &err);
	T_ASSERT(fx.cv != NULL);
	T_ASSERT(curlev_multi(fx.cv) != NULL);
}

static void
add(size_t i, const char *path)
{
	struct dsc_err err = DSC_ERR_INIT;
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", fx.lf.port, path);
	T_ASSERT((fx.easy[i] = curl_easy_init()) != NULL);
	curl_easy_setopt(fx.easy[i], CURLOPT_URL, url);
	curl_easy_setopt(fx.easy[i], CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(fx.easy[i], CURLOPT_PROXY, "");
	curl_easy_setopt(fx.easy[i], CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(fx.easy[i], CURLOPT_WRITEDATA, (void *)(intptr_t)i);
	T_EQ(curlev_add(fx.cv, fx.easy[i], &err), 0);
}

#define WAIT_FOR(cond) LOOP_WAIT_FOR(&fx.lf, cond)

TEST(transfers_end_through_done)
{
	char path[16], want[32];
	size_t i;

	setup();
	for (i = 0; i < N_EASY; i++) {
		snprintf(path, sizeof(path), "/%zu", i);
		add(i, path);
	}
	T_EQ(fx.done, 0); /* never from inside curlev_add */
	WAIT_FOR(fx.done == N_EASY);
	for (i = 0; i < N_EASY; i++) {
		snprintf(want, sizeof(want), "you asked /%zu", i);
		T_EQ(fx.rc[i], CURLE_OK);
		T_EQ(fx.body_len[i], strlen(want));
		T_MEMEQ(fx.body[i], want, strlen(want));
	}
	teardown();
}

TEST(removed_transfer_is_not_reported)
{
	setup();
	add(0, "/slow");
	add(1, "/fast");
	WAIT_FOR(fx.done == 1);
	T_ASSERT(fx.easy[1] == NULL);
	curlev_remove(fx.cv, fx.easy[0]);
	loop_pump(&fx.lf, 200);
	T_EQ(fx.done, 1);
	teardown();
}

TEST(free_with_transfers_in_flight)
{
	setup();
	add(0, "/slow");
	add(1, "/slow");
	/* Connected and waiting for answers that never come. */
	loop_pump(&fx.lf, 100);
	T_EQ(fx.done, 0);
	teardown();
}

T_MAIN()
