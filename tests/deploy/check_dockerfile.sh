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
# Packages installed from .deb files the builder stage made (the librdkafka
# backport): the package name is the file name up to its first '_'; it must be
# one the builder has, and its archive namesake gives its dependencies.
local_debs=$(awk '/^FROM .* AS runtime/{on=1} on' Dockerfile | grep -oE '/tmp/debs/[a-z0-9.+-]+_[^ ]+\.deb' | sort -u || true)
for deb in $local_debs; do
  name=$(basename "$deb"); name=${name%%_*}
  grep -q "COPY --from=builder .*/$(basename "$deb")" Dockerfile || problem "$deb is installed but not copied from the builder"
  version=$(basename "$deb" .deb); version=${version#*_}; version=${version%_*}
  [ "$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null || true)" = "$version" ] ||
    problem "$name $version (from $deb) is not what this machine built and installed (scripts/setup)"
  runtime="$runtime $name"
done
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
