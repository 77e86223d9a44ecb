#!/usr/bin/env bash
# Exercises the Dockerfile without a container engine:
#  1. its builder stage runs the same commands as the test command
#     (scripts/setup, then scripts/build release), so the test command is
#     the proof that those steps work on Debian 12;
#  2. every runtime package it installs exists in Debian's archive;
#  3. every shared library the built binary loads comes from one of those
#     packages or their dependencies, so the runtime image can start it.
#
#   tests/deploy/check_dockerfile.sh BOXWATCH_BINARY
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 BOXWATCH_BINARY" >&2
  exit 2
fi
binary=$(realpath "$1")
cd "$(dirname "$0")/../.."
fail=0
problem() { echo "check_dockerfile: $*" >&2; fail=1; }

builder=$(awk '/^FROM .* AS builder/{on=1} /^FROM .* AS runtime/{on=0} on' Dockerfile)
grep -q 'scripts/setup' <<<"$builder" || problem "the builder stage does not run scripts/setup"
grep -Eq 'scripts/build release' <<<"$builder" || problem "the builder stage does not run scripts/build release"
grep -q '^scripts/setup$' scripts/test && grep -q '^scripts/build release$' scripts/test ||
  problem "scripts/test no longer runs scripts/setup and scripts/build release: keep the Dockerfile in step"

runtime=$(awk '/^FROM .* AS runtime/{on=1} on' Dockerfile |
  sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' |
  grep -Ev '^(apt-get|install|rm|no-install-recommends|y)$' || true)
[ -n "$runtime" ] || problem "found no runtime packages in the Dockerfile"
for p in $runtime; do
  apt-cache show "$p" >/dev/null 2>&1 || problem "runtime package $p is not in Debian's archive"
done

closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances $runtime 2>/dev/null | grep -E '^[a-z0-9]' | sed 's/:.*//' | sort -u)
checked=0
while read -r lib; do
  [ -n "$lib" ] || continue
  owner=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null || true)
  owner=${owner%%:*}
  if [ -z "$owner" ]; then
    problem "no Debian package owns $lib"
    continue
  fi
  checked=$((checked + 1))
  grep -qx "$owner" <<<"$closure" || problem "$lib comes from $owner, which the runtime stage does not install"
done < <(ldd "$binary" | awk '/=> \//{print $3}')
[ "$checked" -gt 5 ] || problem "checked only $checked libraries of $binary"
[ "$fail" -eq 0 ] || exit 1
echo "check_dockerfile: builder runs the test command's steps; $(wc -w <<<"$runtime") runtime packages exist;" \
  "$checked shared libraries are covered"
