#!/usr/bin/env bats
# 31-docs.bats - the documentation agrees with the programs (STYLE.md 2.8,
# "one truth"): every long option a program's --help prints is in its man
# page and in both completion files; the bash completion offers the words
# it should, asks a real server and agent for live service names, and stays
# silent and bounded when nobody answers; the zsh completion, typed into a
# real zsh under zpty, offers them too; every man page passes mandoc -Tlint;
# make install puts pages and completions in place and uninstall removes
# them. A program that is not built is skipped, saying so.

load helpers

PROGS=(dsc-server dsc-agent dsc-register dsc-lookup dsc-members)

setup_file() {
	dsc_find_build
	DSC_BIN_DIR=$(dirname "$DSC_SERVER")
	export DSC_BIN_DIR
}
teardown_file() {
	stop_agents
	stop_all
}
teardown() {
	dump_logs_on_failure
	agent_logs_on_failure
}

# The man page of PROG.
page_of() {
	case $1 in
	dsc-server | dsc-agent) echo "$DSC_TOP/man/$1.8" ;;
	*) echo "$DSC_TOP/man/$1.1" ;;
	esac
}

# The long options PROG's --help prints, one a line.
long_opts() {
	"$DSC_BIN_DIR/$1" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# doc_text FILE: the words a reader sees: a man page as mandoc renders it,
# without line breaks or overstrikes; any other file as it is.
doc_text() {
	case $1 in
	*.[1-8]) mandoc -Tascii -O width=1000 "$1" | col -b ;;
	*) cat "$1" ;;
	esac
}

# has FILE OPT: OPT appears in FILE as a word of its own, so --tag is not
# found inside --tags.
has() {
	doc_text "$1" | grep -qE -- "(^|[^A-Za-z0-9-])$2([^A-Za-z0-9-]|$)"
}

# docs_cover PROG: every long option of PROG's --help is in its man page
# and in both completion files; names the ones missing.
docs_cover() {
	local prog=$1 opt file missing=
	[ -x "$DSC_BIN_DIR/$prog" ] || skip "$prog not built"
	run -0 long_opts "$prog"
	[ -n "$output" ]
	for opt in $output; do
		for file in "$(page_of "$prog")" "$DSC_TOP/completions/dsc.bash" \
		    "$DSC_TOP/completions/_dsc"; do
			has "$file" "$opt" || missing+=" $opt (${file##*/})"
		done
	done
	if [ -n "$missing" ]; then
		echo "$prog: not documented:$missing" >&2
		return 1
	fi
}

# complete_words WORD...: what the bash completion of dsc.bash offers for
# the command line WORD... with the cursor at the end of the last word, one
# a line, sorted. The function is the one `complete -p` names for the
# program. Runs in a clean bash with PATH limited to the system and the
# build directory, bounded by timeout(1): a hung completion fails (124).
complete_words() {
	local out
	# shellcheck disable=SC2016 # expanded by the inner bash
	out=$(PATH="$DSC_BIN_DIR:/usr/bin:/bin" timeout -k 5 30 \
	    bash --norc --noprofile -c '
		. "$1/completions/dsc.bash" || exit 1
		shift
		f=$(complete -p "$1" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
		[ -n "$f" ] || { echo "no completion for $1" >&2; exit 1; }
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		"$f"
		[ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"
	' _ "$DSC_TOP" "$@") || return
	[ -z "$out" ] || sort <<<"$out"
}

# expect_words "WORD..." LINE...: complete_words LINE... offers exactly
# the words of the first argument.
expect_words() {
	local want words
	read -ra words <<<"$1"
	want=$([ ${#words[@]} -eq 0 ] || printf '%s\n' "${words[@]}" | sort)
	shift
	run -0 complete_words "$@"
	if [ "$output" != "$want" ]; then
		printf 'completing "%s":\nwant: %s\ngot:  %s\n' "$*" \
		    "$(tr '\n' ' ' <<<"$want")" "$(tr '\n' ' ' <<<"$output")" >&2
		return 1
	fi
}

# zsh_complete LINE WORD...: types LINE and two TABs into an interactive
# zsh (under zpty) that loads completions/_dsc, and succeeds once every
# WORD has appeared on its screen; fails, showing the screen, when one has
# not within $ZSH_WAIT seconds (default 20).
zsh_complete() {
	local script=$BATS_TEST_TMPDIR/complete.zsh
	cat >"$script" <<'EOF'
zmodload zsh/zpty || exit 2
local dir=$1 line=$2 out= chunk w deadline
shift 2
zpty z 'zsh -f -i' || exit 2
zpty -w z "PROMPT='> '; fpath=(${(q)dir} \$fpath);
    autoload -U compinit; compinit -u -D; print -r -- RE''ADY"
deadline=$(( SECONDS + ${ZSH_WAIT:-20} ))
while (( SECONDS < deadline )); do
	zpty -r -t z chunk && out+=$chunk || sleep 0.1
	[[ $out == *READY* ]] && break
done
zpty -w -n z "$line"$'\t\t'
out=
while (( SECONDS < deadline )); do
	zpty -r -t z chunk && out+=$chunk || sleep 0.1
	for w in "$@"; do
		[[ $out == *$w* ]] || continue 2
	done
	zpty -d z
	exit 0
done
zpty -d z
print -r -- "missing some of: $*; screen:" >&2
print -r -- "${out//$'\e'\[[0-9;?]#[a-zA-Z]/}" >&2
exit 1
EOF
	PATH="$DSC_BIN_DIR:$PATH" timeout -k 5 60 zsh -f "$script" \
	    "$DSC_TOP/completions" "$@"
}

# ---- (a) every option is documented and completed ---------------------------

@test "dsc-server: every --help option is in dsc-server.8, dsc.bash and _dsc" {
	docs_cover dsc-server
}

@test "dsc-agent: every --help option is in dsc-agent.8, dsc.bash and _dsc" {
	docs_cover dsc-agent
}

@test "dsc-register: every --help option is in dsc-register.1, dsc.bash and _dsc" {
	docs_cover dsc-register
}

@test "dsc-lookup: every --help option is in dsc-lookup.1, dsc.bash and _dsc" {
	docs_cover dsc-lookup
}

@test "dsc-members: every --help option is in dsc-members.1, dsc.bash and _dsc" {
	docs_cover dsc-members
}

@test "the coverage check finds an option that is missing" {
	local f=$BATS_TEST_TMPDIR/page.1
	printf '%s\n' .Dd '.Dt X 1' .Os '.Sh NAME' '.Nm x' '.Nd y' \
	    '.Sh DESCRIPTION' '.Bl -tag -width Ds' '.It Fl \-tags' \
	    '.It Fl \-check\-http Ar url' .El >"$f"
	run -1 has "$f" --tag
	run -0 has "$f" --tags
	run -0 has "$f" --check-http
	run -1 has "$f" --check
	printf '%s\n' "'--tags'" >"$BATS_TEST_TMPDIR/comp"
	run -1 has "$BATS_TEST_TMPDIR/comp" --tag
	run -0 has "$BATS_TEST_TMPDIR/comp" --tags
}

# ---- (b) the bash completion offers the expected words ----------------------

@test "bash: every program has a completion function" {
	local p
	for p in "${PROGS[@]}"; do
		run -0 complete_words "$p" --
		[ -n "$output" ]
	done
}

@test "bash: sub-commands" {
	expect_words keygen dsc-server ''
	expect_words 'pass warn fail maintenance' dsc-register ''
	expect_words maintenance dsc-register ma
	expect_words 'on off' dsc-register maintenance ''
	expect_words 'on off' dsc-register -q maintenance ''
}

@test "bash: options, per program and per form" {
	expect_words '--data-dir' dsc-server --data
	expect_words '--enable-script-checks' dsc-agent --ena
	expect_words '--check-http --check-script --check-tcp --check-ttl' \
	    dsc-register web --port 80 --check-
	expect_words '--note' dsc-register pass service:web --no
	expect_words '--reason' dsc-register maintenance on --re
	expect_words '--stale --server' dsc-lookup --s
	expect_words '--raft' dsc-members --ra
}

@test "bash: option values, also after '='" {
	expect_words 'error warn info debug' dsc-agent --log-level ''
	expect_words 'debug' dsc-agent --log-level = d
	expect_words 'addr json srv env' dsc-lookup --format ''
	expect_words 'json' dsc-lookup --format = j
	expect_words 'table json' dsc-members --format ''
	# A value is not an operand: after it come options and names again.
	expect_words '--tag' dsc-lookup --format json web --ta
	expect_words 'on off' dsc-register --agent 127.0.0.1 : 1 maintenance ''
}

@test "bash: files and directories where an option takes one" {
	local d=$BATS_TEST_TMPDIR/files
	mkdir -p "$d/sub"
	touch "$d/web.json" "$d/cluster.key" "$d/notes.txt"
	expect_words "$d/cluster.key" dsc-register --key-file "$d/c"
	expect_words "$d/web.json $d/sub" dsc-register --file "$d/"
	expect_words "$d/sub" dsc-agent --config-dir "$d/"
	expect_words "$d/sub" dsc-server --data-dir "$d/"
	expect_words "$d/notes.txt" dsc-server keygen "$d/n"
}

@test "bash: live service names from a real server" {
	local b
	for b in dsc-server dsc-lookup tests/tools/dsc-rpc; do
		[ -x "$DSC_BIN_DIR/$b" ] || skip "${b##*/} not built"
	done
	dsc_setup_file
	set_members 5
	start_server 5 --bootstrap-expect 1
	run -0 wait_for_leader 20 5
	run -0 rpc 5 -w catalog.register '{"Node":"n1","Address":"127.0.0.9",
	    "Service":{"Service":"web","ID":"web-1","Port":8080,
	    "Tags":["v1","edge"]}}'
	run -0 rpc 5 -w catalog.register '{"Node":"n1","Address":"127.0.0.9",
	    "Service":{"Service":"db","ID":"db-1","Port":5432,
	    "Tags":["primary"]}}'
	local conn=(--server "$(srv_ip 5)" : "$(srv_port 5)" --key-file "$DSC_KEY")
	expect_words 'db web' dsc-lookup "${conn[@]}" ''
	expect_words 'web' dsc-lookup "${conn[@]}" w
	expect_words 'edge primary v1' dsc-lookup "${conn[@]}" --tag ''
	expect_words 'db web' dsc-register "${conn[@]}" --deregister ''
	expect_words 'db' dsc-register "${conn[@]}" maintenance on d
	# A name is given: no second one.
	expect_words '' dsc-lookup "${conn[@]}" web ''
}

@test "bash: live service names through the agent of DSC_HTTP_ADDR" {
	[ -x "$DSC_BIN_DIR/dsc-lookup" ] || skip "dsc-lookup not built"
	[ -x "$DSC_BIN_DIR/dsc-agent" ] || skip "dsc-agent not built"
	srv_running 5 || skip "needs the server of the test above"
	local w
	dsc_setup_file
	start_agent 1
	run -0 curl -fsS -m 30 -X PUT -d '{"Name":"cache","Port":6379}' \
	    "$(agt_url 1)/v1/agent/service/register"
	DSC_HTTP_ADDR=$(agt_http 1) DSC_KEY_FILE=$DSC_KEY \
	    run -0 complete_words dsc-lookup ''
	for w in cache db web; do
		grep -qx "$w" <<<"$output" || { echo "no $w in: $output" >&2; false; }
	done
	DSC_HTTP_ADDR=$(agt_http 1) DSC_KEY_FILE=$DSC_KEY \
	    expect_words 'cache' dsc-register --deregister ca
}

@test "zsh: options, values and sub-commands" {
	command -v zsh >/dev/null || skip "zsh not installed"
	zsh -f -c 'zmodload zsh/zpty' 2>/dev/null || skip "zsh lacks zpty"
	run -0 zsh_complete 'dsc-lookup --format ' addr json srv env
	run -0 zsh_complete 'dsc-register --check-' --check-http --check-tcp \
	    --check-ttl --check-script
	run -0 zsh_complete 'dsc-server --wal' --wal-segment-size
	run -0 zsh_complete 'dsc-register maint' maintenance
	run -0 zsh_complete 'dsc-agent --log-level ' debug error info warn
	run -0 zsh_complete 'dsc-members --format ' table json
	# The check can fail: a word that is not offered is missed (and
	# waited for only briefly: it never comes).
	ZSH_WAIT=3 run -1 zsh_complete 'dsc-members --format ' srv
}

@test "zsh: live names from a real server" {
	command -v zsh >/dev/null || skip "zsh not installed"
	zsh -f -c 'zmodload zsh/zpty' 2>/dev/null || skip "zsh lacks zpty"
	srv_running 5 || skip "needs the server of the tests above"
	dsc_setup_file
	run -0 zsh_complete "dsc-lookup --server $(srv_addr 5) \
	    --key-file $DSC_KEY " web
}

@test "bash: live names are silent and bounded when nobody answers" {
	[ -x "$DSC_BIN_DIR/dsc-lookup" ] || skip "dsc-lookup not built"
	[ -x "$DSC_SERVER" ] || skip "dsc-server not built"
	local port
	port=$(pick_port 127.0.0.1)
	"$DSC_SERVER" keygen "$BATS_TEST_TMPDIR/key"
	# Nothing listens on the port picked: no words, no noise, and an end
	# within complete_words' bound.
	DSC_HTTP_ADDR=127.0.0.1:$port DSC_KEY_FILE=$BATS_TEST_TMPDIR/key \
	    run -0 --separate-stderr complete_words dsc-lookup ''
	[ -z "$output" ]
	[ -z "$stderr" ]
	DSC_HTTP_ADDR=127.0.0.1:$port DSC_KEY_FILE=$BATS_TEST_TMPDIR/key \
	    run -0 --separate-stderr complete_words dsc-register --deregister ''
	[ -z "$output" ]
	[ -z "$stderr" ]
}

# ---- (c) the man pages --------------------------------------------------------

@test "every man page exists and passes mandoc -Tlint -Wwarning" {
	local p pages=(dsc.7 dsc.conf.5 dsc-server.8 dsc-agent.8
	    dsc-register.1 dsc-lookup.1 dsc-members.1)
	for p in "${pages[@]}"; do
		[ -f "$DSC_TOP/man/$p" ] || { echo "missing man/$p" >&2; false; }
		run -0 mandoc -Tlint -Wwarning "$DSC_TOP/man/$p"
		[ -z "$output" ]
	done
}

@test "every man page has EXIT STATUS, ENVIRONMENT, FILES and EXAMPLES" {
	local p s
	for p in "$DSC_TOP"/man/*.[1-8]; do
		for s in 'EXIT STATUS' ENVIRONMENT FILES EXAMPLES; do
			grep -qx "\.Sh $s" "$p" ||
			    { echo "${p##*/}: no $s" >&2; false; }
		done
	done
}

@test "the bash completion passes shellcheck" {
	command -v shellcheck >/dev/null || skip "shellcheck not installed"
	run -0 shellcheck -s bash "$DSC_TOP/completions/dsc.bash"
}

@test "the zsh completion parses" {
	command -v zsh >/dev/null || skip "zsh not installed"
	run -0 zsh -n "$DSC_TOP/completions/_dsc"
	head -n 1 "$DSC_TOP/completions/_dsc" | grep -q '^#compdef dsc-server'
}

# ---- make install -------------------------------------------------------------

@test "make install puts man pages and completions in place; uninstall removes them" {
	local d=$BATS_TEST_TMPDIR/root p prog old=()
	for prog in $(cd "$DSC_TOP/cmd" && echo */); do
		prog=${prog%/}
		ls "$DSC_TOP/cmd/$prog/"*.c >/dev/null 2>&1 || continue
		[ -x "$DSC_BIN_DIR/$prog" ] || skip "$prog not built"
		# Install what is built; never rebuild it here.
		old+=(-o "$DSC_BIN_DIR/$prog")
	done
	run -0 make -C "$DSC_TOP" --no-print-directory "${old[@]}" \
	    BUILD="$DSC_BIN_DIR" DESTDIR="$d" PREFIX=/usr install
	for p in man1/dsc-register.1 man1/dsc-lookup.1 man1/dsc-members.1 \
	    man5/dsc.conf.5 man7/dsc.7 man8/dsc-server.8 man8/dsc-agent.8; do
		[ -f "$d/usr/share/man/$p" ] || { echo "no $p" >&2; false; }
	done
	[ -f "$d/usr/share/bash-completion/completions/dsc" ]
	[ -f "$d/usr/share/zsh/site-functions/_dsc" ]
	for prog in "${old[@]}"; do
		[ "$prog" = -o ] && continue
		prog=${prog##*/}
		[ "$(readlink "$d/usr/share/bash-completion/completions/$prog")" = dsc ]
	done
	run -0 make -C "$DSC_TOP" --no-print-directory "${old[@]}" \
	    BUILD="$DSC_BIN_DIR" DESTDIR="$d" PREFIX=/usr uninstall
	[ ! -e "$d" ]
}
