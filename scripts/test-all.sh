#!/usr/bin/env bash
# Installs what the tests need and runs them all. `.ci/run` calls this, and
# so does a developer on a fresh Debian machine (as root, or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # gcc-multilib: the host-differential tester's 32-bit native helper.
  # A partly failed update (a mirror mid-sync) still leaves usable lists.
  $SUDO apt-get update -qq || echo "test-all: apt-get update reported errors; going on" >&2
  # nasm: the bare-metal system conformance programs.
  # gdb: the GDB remote-stub session test (it fails without gdb when CI=true).
  $SUDO apt-get install -y -qq gcc-multilib nasm gdb >/dev/null
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
# The JIT's code generation for aarch64 and riscv64 hosts (compile only).
cargo test -p oxide86-jit --features cross --release
