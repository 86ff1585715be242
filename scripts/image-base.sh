#!/bin/sh
# A Debian 12 base image with python3 and python3-venv, from Debian's own packages, for
# building the Dockerfile where no container registry is reachable (tests/test_image.py):
#
#   scripts/image-base.sh [IMAGE]      # default localhost/base:bookworm
#
# debootstrap takes about 40 s; its root filesystem is kept as a tarball under
# ~/.cache/stack-exporter/image-base/ (or $STACK_EXPORTER_CACHE/image-base/), so a rerun
# only re-imports it, and does nothing when podman has the image already.
# Needs root (debootstrap), podman and debootstrap.
set -eu

IMAGE=${1:-localhost/base:bookworm}
SUITE=bookworm
CACHE=${STACK_EXPORTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stack-exporter}/image-base
TARBALL=$CACHE/$SUITE-minbase.tar

if podman image exists "$IMAGE"; then
	exit 0
fi

if [ ! -s "$TARBALL" ]; then
	# the mirror apt already uses (a local proxy or mirror on CI machines), else Debian's
	mirror=$(grep -hs -m1 -E '^URIs:|^deb ' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list 2>/dev/null | grep -v security | head -n1 |
		sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*//')
	mirror=${mirror:-http://deb.debian.org/debian}
	mkdir -p "$CACHE"
	root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
	trap 'rm -rf "$root" "$TARBALL.tmp"' EXIT
	echo "image-base: debootstrap $SUITE from $mirror (about 40 s, cached in $CACHE)" >&2
	debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
		"$SUITE" "$root" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$CACHE/debootstrap.log" >&2; exit 1; }
	# apt's package lists and downloaded .debs are not the image's business
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar --numeric-owner -C "$root" -cf "$TARBALL.tmp" .
	mv "$TARBALL.tmp" "$TARBALL"
fi

podman import --quiet "$TARBALL" "$IMAGE" >/dev/null
echo "image-base: imported $IMAGE from $TARBALL" >&2
