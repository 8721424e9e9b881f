/*
 * test_cli.c - the command-line tools' shared logic: argument parsers,
 * where the agent and key come from, and every output format.
 */
#include "cli.h"

#include <getopt.h>

#include "mem.h"

#include "t.h"

/* ---- helpers ------------------------------------------------------- */

#define ADDR_OK(in, want)                                                      \
	do {                                                                   \
		char out_[RPCC_ADDR_MAX];                                      \
		T_EQ(cli_parse_addr(in, out_, NULL), 0);                       \
		T_STREQ(out_, want);                                           \
	} while (0)

#define ADDR_BAD(in)                                                           \
	do {                                                                   \
		char out_[RPCC_ADDR_MAX];                                      \
		struct dsc_err err_ = DSC_ERR_INIT;                            \
		T_EQ(cli_parse_addr(in, out_, &err_), DSC_EUSAGE);             \
		T_ASSERT(strstr(err_.msg, "invalid address") != NULL);         \
	} while (0)

#define SECS(in, want)                                                         \
	do {                                                                   \
		uint64_t ms_ = 0;                                              \
		T_EQ(cli_parse_secs(in, &ms_, NULL), 0);                       \
		T_EQ(ms_, want);                                               \
	} while (0)

#define SECS_BAD(in)                                                           \
	T_EQ(cli_parse_secs(in, &(uint64_t){ 0 }, NULL), DSC_EUSAGE)

/* Formats the health.service answer @json as @fmt into a static string. */
static const char *
fmt(const char *json, enum cli_fmt f, bool with_status)
{
	static char text[4096];
	struct buf b = BUF_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	json_t *inst = json_loads(json, 0, NULL);

	T_ASSERT(inst != NULL);
	T_EQ(cli_fmt_instances(&b, inst, "my-web.1", f, with_status, &err), 0);
	json_decref(inst);
	T_ASSERT(b.len < sizeof(text));
	memcpy(text, b.p ? (char *)b.p : "", b.len + 1);
	buf_release(&b);
	return text;
}

/* Two instances: one with its own address and a warning check, one that
 * falls back to its node's IPv6 address. */
static const char two[] =
    "[{\"Node\":{\"Node\":\"n1\",\"Address\":\"10.0.0.1\"},"
    "\"Service\":{\"ID\":\"w1\",\"Service\":\"my-web.1\",\"Address\":"
    "\"10.1.1.1\",\"Port\":80,\"Tags\":[\"a\"],\"Meta\":{\"k\":\"v\"},"
    "\"Weights\":{\"Passing\":5,\"Warning\":2}},"
    "\"Checks\":[{\"CheckID\":\"c\",\"Status\":\"warning\"}]},"
    "{\"Node\":{\"Node\":\"n2\",\"Address\":\"::1\"},"
    "\"Service\":{\"ID\":\"w2\",\"Service\":\"my-web.1\",\"Address\":\"\","
    "\"Port\":81},\"Checks\":[]}]";

/* ---- argument parsers ---------------------------------------------- */

TEST(addresses_in_every_accepted_form)
{
	ADDR_OK("127.0.0.1:8500", "127.0.0.1:8500");
	ADDR_OK("http://127.0.0.1:8500", "127.0.0.1:8500");
	ADDR_OK("http://127.0.0.1:8500/", "127.0.0.1:8500");
	ADDR_OK("localhost:1", "localhost:1");
	ADDR_OK("[::1]:65535", "[::1]:65535");
	ADDR_OK("http://[fe80::1]:80", "[fe80::1]:80");
}

TEST(addresses_refused)
{
	ADDR_BAD("");
	ADDR_BAD("127.0.0.1");
	ADDR_BAD("127.0.0.1:");
	ADDR_BAD(":8500");
	ADDR_BAD("127.0.0.1:0");
	ADDR_BAD("127.0.0.1:65536");
	ADDR_BAD("127.0.0.1:85x0");
	ADDR_BAD("127.0.0.1:-1");
	ADDR_BAD("::1:8500");
	ADDR_BAD("[::1]8500");
	ADDR_BAD("[]:1");
	ADDR_BAD("a b:1");
	ADDR_BAD("host/x:1");
	ADDR_BAD("http://");
	ADDR_BAD("a:123456789012345678901234567890");
	{
		char out[RPCC_ADDR_MAX];
		struct dsc_err err = DSC_ERR_INIT;

		T_EQ(cli_parse_addr("https://x:1", out, &err), DSC_EUSAGE);
		T_ASSERT(strstr(err.msg, "https") != NULL);
	}
	{
		char big[300], out[RPCC_ADDR_MAX];

		memset(big, 'a', sizeof(big));
		memcpy(big + sizeof(big) - 4, ":80", 4);
		T_EQ(cli_parse_addr(big, out, NULL), DSC_EUSAGE);
	}
}

TEST(ports)
{
	unsigned p = 0;
	struct dsc_err err = DSC_ERR_INIT;

	T_EQ(cli_parse_port("1", &p, NULL), 0);
	T_EQ(p, 1);
	T_EQ(cli_parse_port("65535", &p, NULL), 0);
	T_EQ(p, 65535);
	T_EQ(cli_parse_port("0", &p, &err), DSC_EUSAGE);
	T_STREQ(err.msg, "invalid port '0': want 1 to 65535");
	T_EQ(cli_parse_port("65536", &p, NULL), DSC_EUSAGE);
	T_EQ(cli_parse_port("+80", &p, NULL), DSC_EUSAGE);
	T_EQ(cli_parse_port(" 80", &p, NULL), DSC_EUSAGE);
	T_EQ(cli_parse_port("80 ", &p, NULL), DSC_EUSAGE);
	T_EQ(cli_parse_port("", &p, NULL), DSC_EUSAGE);
	T_EQ(cli_parse_port("99999999999999999999999", &p, NULL), DSC_EUSAGE);
	T_EQ(p, 65535);
}

TEST(timeouts_in_seconds_or_go_durations)
{
	SECS("5", 5000);
	SECS("0.5", 500);
	SECS("0.0001", 1); /* never "no time at all" */
	SECS("3600", 3600000);
	SECS("500ms", 500);
	SECS("1m30s", 90000);
	SECS("1ns", 1);
	SECS_BAD("0");
	SECS_BAD("0s");
	SECS_BAD("-1");
	SECS_BAD("-1s");
	SECS_BAD("3601");
	SECS_BAD("2h");
	SECS_BAD("");
	SECS_BAD("5 ");
	SECS_BAD("nan");
	SECS_BAD("inf");
	SECS_BAD("1e9");
	SECS_BAD("5x");
}

TEST(durations_must_be_positive_go_text)
{
	struct dsc_err err = DSC_ERR_INIT;

	T_EQ(cli_parse_dur("10s", NULL), 0);
	T_EQ(cli_parse_dur("1h30m", NULL), 0);
	T_EQ(cli_parse_dur("10", &err), DSC_EUSAGE);
	T_EQ(err.code, DSC_EUSAGE);
	T_EQ(cli_parse_dur("0s", &err), DSC_EUSAGE);
	T_STREQ(err.msg, "invalid duration '0s': must be positive");
	T_EQ(cli_parse_dur("-5s", NULL), DSC_EUSAGE);
	T_EQ(cli_parse_dur("1d", NULL), DSC_EUSAGE);
}

/* ---- options and environment ----------------------------------------- */

static const struct option common[] = { CLI_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 } };

/* Parses @argv's common options into @c as a tool does. */
static void
parse(struct cli *c, int argc, char **argv)
{
	int ch;

	cli_init(c, "test", "help\n");
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(
	            argc, argv, ":" CLI_COMMON_SHORTOPTS, common, NULL)) != -1)
		T_ASSERT(cli_option(c, ch, optarg, argc, argv));
	cli_finish(c);
}

TEST(common_options)
{
	char *argv[] = { "t", "--server", "127.0.0.2:8300", "--server",
		"http://127.0.0.3:8300", "-t", "1.5", "-q", "--key-file", "k",
		NULL };
	struct cli c;

	parse(&c, 10, argv);
	T_EQ(c.n_servers, 2);
	T_STREQ(c.servers[0], "127.0.0.2:8300");
	T_STREQ(c.servers[1], "127.0.0.3:8300");
	T_EQ(c.timeout_ms, 1500);
	T_ASSERT(c.quiet);
	T_STREQ(c.key_file, "k");
}

TEST(agent_from_flag_then_environment_then_default)
{
	char *flag[] = { "t", "--agent", "127.0.0.9:1", NULL };
	char *none[] = { "t", NULL };
	struct cli c;

	setenv("DSC_HTTP_ADDR", "127.0.0.5:5", 1);
	setenv("CONSUL_HTTP_ADDR", "http://127.0.0.6:6", 1);
	setenv("DSC_KEY_FILE", "/env/key", 1);
	parse(&c, 3, flag);
	T_STREQ(c.agent, "127.0.0.9:1");
	T_STREQ(c.key_file, "/env/key");
	parse(&c, 1, none);
	T_STREQ(c.agent, "127.0.0.5:5");
	T_STREQ(c.agent_from, "DSC_HTTP_ADDR");
	T_EQ(c.timeout_ms, CLI_TIMEOUT_MS_DEFAULT);
	setenv("DSC_HTTP_ADDR", "", 1); /* empty counts as unset */
	parse(&c, 1, none);
	T_STREQ(c.agent, "127.0.0.6:6");
	unsetenv("DSC_HTTP_ADDR");
	unsetenv("CONSUL_HTTP_ADDR");
	unsetenv("DSC_KEY_FILE");
	parse(&c, 1, none);
	T_STREQ(c.agent, CLI_AGENT_DEFAULT);
	T_ASSERT(c.key_file == NULL);
}

/* ---- output ---------------------------------------------------------- */

TEST(shell_quoting_survives_eval_of_anything)
{
	struct buf b = BUF_INIT;

	T_EQ(cli_shell_quote(&b, "plain"), 0);
	T_EQ(cli_shell_quote(&b, "it's $(rm -rf /) `x`"), 0);
	T_EQ(cli_shell_quote(&b, ""), 0);
	T_STREQ((char *)b.p, "'plain''it'\\''s $(rm -rf /) `x`'''");
	buf_release(&b);
}

TEST(env_names_and_host_ports)
{
	struct buf b = BUF_INIT;

	T_EQ(cli_env_name(&b, "my-web.v2"), 0);
	T_EQ(buf_addch(&b, ' '), 0);
	T_EQ(cli_env_name(&b, "9lives"), 0);
	T_EQ(buf_addch(&b, ' '), 0);
	T_EQ(cli_hostport(&b, "10.0.0.1", 80), 0);
	T_EQ(buf_addch(&b, ' '), 0);
	T_EQ(cli_hostport(&b, "fe80::1", 443), 0);
	T_STREQ((char *)b.p, "MY_WEB_V2 _9LIVES 10.0.0.1:80 [fe80::1]:443");
	buf_release(&b);
}

TEST(tables_align_columns_two_spaces_apart)
{
	const char *cells[] = { "Node", "Address", "Build", "s1",
		"127.0.0.2:8300", "0.1.0", "client-long", "10.0.0.1", "" };
	struct buf b = BUF_INIT;

	T_EQ(cli_table(&b, cells, 3, 3), 0);
	T_STREQ((char *)b.p,
	    "Node         Address         Build\n"
	    "s1           127.0.0.2:8300  0.1.0\n"
	    "client-long  10.0.0.1\n");
	T_EQ(cli_table(&b, cells, 1, 0), DSC_EINVAL);
	buf_release(&b);
}

TEST(format_names)
{
	T_EQ(cli_fmt_parse("addr"), CLI_FMT_ADDR);
	T_EQ(cli_fmt_parse("json"), CLI_FMT_JSON);
	T_EQ(cli_fmt_parse("srv"), CLI_FMT_SRV);
	T_EQ(cli_fmt_parse("env"), CLI_FMT_ENV);
	T_EQ(cli_fmt_parse("xml"), -1);
	T_EQ(cli_fmt_parse(""), -1);
}

TEST(addr_format_falls_back_to_the_node_address)
{
	T_STREQ(fmt(two, CLI_FMT_ADDR, false), "10.1.1.1:80\n[::1]:81\n");
	T_STREQ(fmt(two, CLI_FMT_ADDR, true),
	    "10.1.1.1:80\twarning\n[::1]:81\tpassing\n");
	T_STREQ(fmt("[]", CLI_FMT_ADDR, false), "");
}

TEST(srv_format_uses_the_weight_of_the_status)
{
	T_STREQ(fmt(two, CLI_FMT_SRV, false), "1 2 80 10.1.1.1\n1 1 81 ::1\n");
}

TEST(json_format_is_one_sorted_array)
{
	T_STREQ(fmt(two, CLI_FMT_JSON, false),
	    "[{\"Address\":\"10.1.1.1\",\"ID\":\"w1\",\"Meta\":{\"k\":\"v\"},"
	    "\"Node\":\"n1\",\"Port\":80,\"Service\":\"my-web.1\",\"Status\":"
	    "\"warning\",\"Tags\":[\"a\"]},{\"Address\":\"::1\",\"ID\":\"w2\","
	    "\"Meta\":{},\"Node\":\"n2\",\"Port\":81,\"Service\":\"my-web.1\","
	    "\"Status\":\"passing\",\"Tags\":[]}]\n");
}

TEST(env_format_is_quoted_assignments)
{
	T_STREQ(fmt(two, CLI_FMT_ENV, true),
	    "MY_WEB_1_ADDRS='10.1.1.1:80 [::1]:81'\n"
	    "MY_WEB_1_COUNT='2'\n"
	    "MY_WEB_1_ADDR='10.1.1.1:80'\n"
	    "MY_WEB_1_HOST='10.1.1.1'\n"
	    "MY_WEB_1_PORT='80'\n"
	    "MY_WEB_1_STATUS='warning'\n");
	T_STREQ(fmt("[]", CLI_FMT_ENV, false),
	    "MY_WEB_1_ADDRS=''\nMY_WEB_1_COUNT='0'\n");
}

TEST(hostile_answers_are_protocol_errors)
{
	static const char *const bad[] = {
		"{}",
		"[1]",
		"[{\"Node\":{},\"Service\":{\"Port\":1}}]",
		"[{\"Node\":{\"Address\":\"a\"},\"Service\":{\"Port\":-1}}]",
		"[{\"Node\":{\"Address\":\"a\"},\"Service\":{\"Port\":65536}}]",
		"[{\"Node\":{\"Address\":\"a\"},\"Service\":{\"Port\":\"1\"}}]",
		"[{\"Node\":{\"Address\":\"a\"}}]",
		"[{\"Node\":{\"Address\":\"a\\nb\"},\"Service\":{\"Port\":1}}]",
		("[{\"Node\":{\"Address\":\"a\"},\"Service\":{\"Port\":1,"
		 "\"Address\":\"x\\ty\"}}]"),
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf b = BUF_INIT;
		struct dsc_err err = DSC_ERR_INIT;
		json_t *v = json_loads(bad[i], 0, NULL);

		T_ASSERT(v != NULL);
		T_EQ(cli_fmt_instances(&b, v, "x", CLI_FMT_ADDR, false, &err),
		    DSC_EPROTO);
		json_decref(v);
		buf_release(&b);
	}
}

TEST(allocation_failures_fail_cleanly)
{
	json_t *inst = json_loads(two, 0, NULL);
	bool done = false;

	T_ASSERT(inst != NULL);
	for (long n = 0; !done && n < 1000; n++) {
		for (int f = 0; f < CLI_FMT_MAX; f++) {
			struct buf b = BUF_INIT;
			struct dsc_err err = DSC_ERR_INIT;
			int rc;

			dsc_mem_fail_after(n);
			rc = cli_fmt_instances(
			    &b, inst, "w", (enum cli_fmt)f, true, &err);
			dsc_mem_fail_after(-1);
			T_ASSERT(rc == 0 || rc == DSC_ENOMEM);
			done = rc == 0 && f == CLI_FMT_MAX - 1;
			buf_release(&b);
		}
	}
	T_ASSERT(done);
	json_decref(inst);
}

T_MAIN()
