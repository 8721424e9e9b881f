# shellcheck shell=bash
# dsc.bash - bash completion for dsc-server, dsc-agent, dsc-register,
# dsc-lookup and dsc-members.
#
# bash-completion loads a completion by the command's name, so `make
# install` puts this file in as "dsc" with a link per program; sourcing it
# by hand works too. It needs nothing from bash-completion, and uses its
# _filedir when it is loaded (quoting, ~, directories).
#
# The options are those each program's --help prints;
# tests/bats/31-docs.bats fails when one is missing here. Service names
# are asked of the live agent with `dsc-lookup --list -q -t 1`, under
# timeout(1) and with stderr closed: a dead agent costs at most two
# seconds and prints nothing.

# Options that take a value, per program: needed to tell a value from an
# operand when finding where on the line the cursor is.
_dsc_common_args='--agent --server --key-file -t'
_dsc_server_args='--config --name --bind --data-dir --key-file
	--bootstrap-expect --join --peer --tick-ms --election-ticks
	--snapshot-every --snapshot-trailing --wal-segment-size --node-ttl'
_dsc_agent_args='--config --name --bind --http --server --data-dir
	--config-dir --key-file --log-level'
_dsc_register_own='--port --id --address --tag --meta --check-http
	--check-tcp --check-ttl --check-script --interval --timeout --file
	--deregister --note --reason --node'
_dsc_register_args="$_dsc_common_args $_dsc_register_own"
_dsc_lookup_args="$_dsc_common_args --tag --format"
_dsc_members_args="$_dsc_common_args --format"

_dsc_common_opts='--agent --server --key-file -t -q --quiet -h --help -V
	--version'

# Sets cur, prev, cword and words from COMP_WORDS, joining "--opt=value"
# (bash splits at '=') so that prev is the option.
_dsc_init() {
	words=("${COMP_WORDS[@]}")
	cword=$COMP_CWORD
	cur=${words[cword]}
	prev=
	[ "$cword" -gt 0 ] && prev=${words[cword - 1]}
	if [ "$cur" = "=" ]; then
		cur=
	elif [ "$prev" = "=" ] && [ "$cword" -gt 1 ]; then
		prev=${words[cword - 2]}
	fi
}

# COMPREPLY: the words of "$*" that start with $cur.
_dsc_reply() {
	mapfile -t COMPREPLY < <(compgen -W "$*" -- "$cur")
}

_dsc_files() {
	if declare -F _filedir >/dev/null; then
		_filedir "$@"
		return
	fi
	compopt -o filenames 2>/dev/null
	if [ $# -gt 0 ]; then
		mapfile -t COMPREPLY < <(compgen -d -- "$cur"
		    compgen -f -X "!*.$1" -- "$cur")
	else
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
	fi
}

_dsc_dirs() {
	if declare -F _filedir >/dev/null; then
		_filedir -d
		return
	fi
	compopt -o filenames 2>/dev/null
	mapfile -t COMPREPLY < <(compgen -d -- "$cur")
}

# _dsc_value I: the option value that starts at words[I], put back
# together where bash split it at ':' (ADDR:PORT); sets _dsc_next to the
# index after it.
_dsc_value() {
	local i=$1
	_dsc_val=${words[i]}
	i=$((i + 1))
	while [ "$i" -lt "$cword" ] && [ "${words[i]}" = ":" ]; do
		_dsc_val+=":${words[i + 1]}"
		i=$((i + 2))
	done
	_dsc_next=$i
}

# Fills the array _dsc_ops with the operands before the cursor, skipping
# options and their values ($1: the options that take one), and
# _dsc_conn with the options that say whom to ask (--agent, --server,
# --key-file).
_dsc_scan() {
	local takes=" ${1//[[:space:]]/ } " w i=1
	_dsc_ops=()
	_dsc_conn=()
	while [ "$i" -lt "$cword" ]; do
		w=${words[i]}
		case $w in
		-- | -) _dsc_ops+=("$w") ;;
		-*)
			if [[ $takes == *" $w "* ]]; then
				i=$((i + 1))
				[ "${words[i]}" = "=" ] && i=$((i + 1))
				if [ "$i" -lt "$cword" ]; then
					_dsc_value "$i"
					case $w in
					--agent | --server | --key-file)
						_dsc_conn+=("$w" "$_dsc_val") ;;
					esac
					i=$((_dsc_next - 1))
				fi
			fi
			;;
		:) ;;
		*) _dsc_ops+=("$w") ;;
		esac
		i=$((i + 1))
	done
}

# The live service names, one per line, asked of the agent (or server)
# the command line names. Bounded and silent: nothing when it fails.
_dsc_services() {
	command -v dsc-lookup >/dev/null 2>&1 || return 0
	timeout -k 1 2 dsc-lookup "${_dsc_conn[@]}" --list -q -t 1 \
	    </dev/null 2>/dev/null | while read -r name _; do
		printf '%s\n' "$name"
	done
}

# Tags of every service, for --tag: the words after each name.
_dsc_tags() {
	command -v dsc-lookup >/dev/null 2>&1 || return 0
	timeout -k 1 2 dsc-lookup "${_dsc_conn[@]}" --list -q -t 1 \
	    </dev/null 2>/dev/null | while read -r _ tags; do
		read -ra tags <<<"${tags//,/ }"
		[ ${#tags[@]} -eq 0 ] || printf '%s\n' "${tags[@]}"
	done | sort -u
}

# _dsc_optarg ARGS: when $prev is an option in ARGS (those that take a
# value), completes its value (nothing for names, numbers and addresses)
# and returns 0; returns 1 otherwise.
_dsc_optarg() {
	[[ " ${1//[[:space:]]/ } " == *" $prev "* ]] || return 1
	case $prev in
	--config | --file) _dsc_files json ;;
	--key-file) _dsc_files ;;
	--data-dir | --config-dir) _dsc_dirs ;;
	--log-level) _dsc_reply error warn info debug ;;
	--check-script)
		# One shell command line: complete its first word.
		mapfile -t COMPREPLY < <(compgen -c -- "$cur")
		;;
	*) COMPREPLY=() ;;
	esac
	return 0
}

_dsc_server() {
	local cur prev cword words
	_dsc_init
	_dsc_optarg "$_dsc_server_args" && return
	_dsc_scan "$_dsc_server_args"
	if [ "${_dsc_ops[0]}" = keygen ]; then
		[ ${#_dsc_ops[@]} -eq 1 ] && _dsc_files
		return
	fi
	case $cur in
	-*)
		_dsc_reply "$_dsc_server_args --log-time -v --verbose -h --help
		    -V --version"
		;;
	*) [ "$cword" -eq 1 ] && _dsc_reply keygen ;;
	esac
}

_dsc_agent() {
	local cur prev cword words
	_dsc_init
	_dsc_optarg "$_dsc_agent_args" && return
	_dsc_reply "$_dsc_agent_args --enable-script-checks -h --help -V
	    --version"
}

_dsc_register() {
	local cur prev cword words
	_dsc_init
	_dsc_scan "$_dsc_register_args"
	if [ "$prev" = --deregister ]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_dsc_services)" -- "$cur")
		return
	fi
	_dsc_optarg "$_dsc_register_args" && return
	case $cur in
	-*)
		case ${_dsc_ops[0]} in
		pass | warn | fail) _dsc_reply "--note $_dsc_common_opts" ;;
		maintenance) _dsc_reply "--reason $_dsc_common_opts" ;;
		*)
			# --note and --reason belong to the other forms.
			_dsc_reply "${_dsc_register_own/--note --reason/}
			    $_dsc_common_opts"
			;;
		esac
		return
		;;
	esac
	case ${#_dsc_ops[@]}:${_dsc_ops[0]} in
	0:) _dsc_reply pass warn fail maintenance ;;
	1:maintenance) _dsc_reply on off ;;
	2:maintenance)
		mapfile -t COMPREPLY < <(compgen -W "$(_dsc_services)" -- "$cur")
		;;
	*) COMPREPLY=() ;;
	esac
}

_dsc_lookup() {
	local cur prev cword words
	_dsc_init
	_dsc_scan "$_dsc_lookup_args"
	case $prev in
	--format) _dsc_reply addr json srv env; return ;;
	--tag)
		mapfile -t COMPREPLY < <(compgen -W "$(_dsc_tags)" -- "$cur")
		return
		;;
	esac
	_dsc_optarg "$_dsc_lookup_args" && return
	case $cur in
	-*)
		_dsc_reply "--tag --all --one --format --wait --stale -l --list
		    $_dsc_common_opts"
		;;
	*)
		if [ ${#_dsc_ops[@]} -eq 0 ]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_dsc_services)" \
			    -- "$cur")
		fi
		;;
	esac
}

_dsc_members() {
	local cur prev cword words
	_dsc_init
	case $prev in
	--format) _dsc_reply table json; return ;;
	esac
	_dsc_optarg "$_dsc_members_args" && return
	_dsc_reply "--raft --format --check $_dsc_common_opts"
}

complete -F _dsc_server dsc-server
complete -F _dsc_agent dsc-agent
complete -F _dsc_register dsc-register
complete -F _dsc_lookup dsc-lookup
complete -F _dsc_members dsc-members
