#!/usr/bin/env bash
# oxide86 beside QEMU's TCG, side by side on the same guests (issue 5, "Speed").
#
#   bash benches/compare-qemu.sh [--runs N] [--scale F] [--only W1,W2]
#                                [--engines interp,jit,tiered] [--no-native]
#                                [--linux [--linux-runs N] [--kernel 686|686-pae]
#                                 [--linux-engines tiered,jit:realtime,...]
#                                 [--append "..."]] [--no-bare-metal]
#
# Bare metal: assembles benches/guests/*.asm (Multiboot v1 ELF kernels that
# boot unchanged under `oxide86 run --kernel` and `qemu-system-i386 -kernel`,
# and the same code as 32-bit Linux processes), runs each under oxide86's
# interp, jit and tiered engines, under QEMU TCG and natively, and prints
# Markdown tables: guest instructions, wall time and MIPS per engine, the
# ratios to the interpreter and to QEMU, % of native. --linux adds the boot
# of Debian's i386 kernel to the shell prompt under oxide86 and QEMU.
# docs/performance.md holds a measured table and explains the columns.
#
# Needs qemu-system-i386 (Debian: apt-get install -y qemu-system-x86), nasm,
# binutils (ld) and python3; installs nothing. Not part of CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "compare-qemu: $1 not found. $2" >&2
    exit 1
  fi
}
need qemu-system-i386 "Install QEMU's system emulator: apt-get install -y qemu-system-x86"
need nasm "Install it: apt-get install -y nasm"
need ld "Install binutils: apt-get install -y binutils"
need python3 "Install it: apt-get install -y python3"
need cargo "Install Rust (https://rustup.rs)"

echo "compare-qemu: building the release binary" >&2
(cd "$root" && cargo build --release --quiet -p oxide86)
exec python3 "$root/benches/compare_qemu.py" --root "$root" "$@"
