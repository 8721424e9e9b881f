#!/bin/sh
# deps.sh - install the Debian packages dsc needs to build and test, when
# missing. Quiet when nothing is missing. gcc and make are assumed.
#
# Usage: .ci/deps.sh [package...]   (default: the project's list)
set -eu

PKGS='pkg-config libevent-dev libcurl4-openssl-dev libjansson-dev'
PKGS="$PKGS libsodium-dev bats mandoc shellcheck"
# zsh: tests/bats/31-docs.bats types into a real zsh to test _dsc.
PKGS="$PKGS zsh"

if [ "$#" -gt 0 ]; then
	PKGS=$*
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: not a Debian system; make sure these are installed:" \
	    "$PKGS" >&2
	exit 0
fi

missing=
for p in $PKGS; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || status=
	case $status in
	*" ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -n "$missing" ] || exit 0

if [ "$(id -u)" -eq 0 ]; then
	as_root=
elif command -v sudo >/dev/null 2>&1; then
	as_root=sudo
else
	echo "deps.sh: need root (or sudo) to install:$missing" >&2
	exit 1
fi

echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Unquoted on purpose: $as_root may be empty, $missing is a list.
# shellcheck disable=SC2086
$as_root apt-get update -qq
# shellcheck disable=SC2086
$as_root apt-get install -y -qq --no-install-recommends $missing
