#!/usr/bin/env bash
# Fetches the Debian i386 guest the Linux boot test runs: the kernels of
# linux-image-686 and linux-image-686-pae and a static busybox, into DIR
# (default target/debian-guest). Idempotent: a DIR that already holds them
# is left alone. Needs apt-get and dpkg-deb (Debian), and root (or sudo) to
# add the i386 architecture the first time.
#
# DIR/vmlinuz-686, DIR/vmlinuz-686-pae, DIR/busybox and DIR/VERSIONS result.
set -euo pipefail
dir=${1:-"$(dirname "$0")/../target/debian-guest"}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -s "$dir/vmlinuz-686" ] && [ -s "$dir/vmlinuz-686-pae" ] && [ -s "$dir/busybox" ]; then
  exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  $SUDO dpkg --add-architecture i386
fi
# A partly failed update (a mirror mid-sync) still leaves usable lists.
$SUDO apt-get update -qq || echo "fetch-debian-guest: apt-get update reported errors; going on" >&2

# The metapackages only depend on the versioned packages that hold vmlinuz.
resolve() {
  apt-cache depends "$1" | awk '/Depends: linux-image-[0-9]/ { sub(/:i386$/, "", $2); print $2; exit }'
}
k686=$(resolve linux-image-686:i386)
kpae=$(resolve linux-image-686-pae:i386)
if [ -z "$k686" ] || [ -z "$kpae" ]; then
  echo "fetch-debian-guest: cannot resolve the kernel packages of linux-image-686/-686-pae" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt-get download writes into the current directory as the _apt user when it can.
chmod 777 "$work"
(cd "$work" && apt-get download -qq "$k686:i386" "$kpae:i386" busybox-static:i386)

extract_vmlinuz() { # package-file destination
  dpkg-deb --fsys-tarfile "$1" | tar -x -C "$work" --wildcards './boot/vmlinuz-*'
  mv "$work"/boot/vmlinuz-* "$2"
}
extract_vmlinuz "$work/${k686}"_*.deb "$dir/vmlinuz-686"
extract_vmlinuz "$work/${kpae}"_*.deb "$dir/vmlinuz-686-pae"
dpkg-deb --fsys-tarfile "$work"/busybox-static_*.deb | tar -x -C "$work" ./bin/busybox
mv "$work/bin/busybox" "$dir/busybox"
printf '%s\n%s\n%s\n' "$k686" "$kpae" "$(basename "$work"/busybox-static_*.deb)" > "$dir/VERSIONS"
echo "fetch-debian-guest: $(tr '\n' ' ' < "$dir/VERSIONS")in $dir"
