//! Writes the Linux boot test's guest for use outside `cargo test`:
//! fetches Debian's i386 kernels and busybox (`scripts/fetch-debian-guest.sh`,
//! cached in `target/debian-guest` or `$OXIDE86_GUEST_CACHE`) and writes the
//! initramfs the test boots to OUT (default `<cache>/initramfs.cpio`).
//! Prints the kernel and initramfs paths, one per line
//! (686, 686-pae, initramfs), for scripts such as `benches/compare-qemu.sh`.
//!
//! `cargo run --release -p oxide86-testsuite --example initramfs [-- OUT]`

use anyhow::{Context, Result};
use oxide86_testsuite::linux;

fn main() -> Result<()> {
    let guest = linux::fetch()?;
    let busybox = std::fs::read(&guest.busybox)
        .with_context(|| format!("reading {}", guest.busybox.display()))?;
    let out = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| linux::cache_dir().join("initramfs.cpio"));
    std::fs::write(&out, linux::initramfs(&busybox))
        .with_context(|| format!("writing {}", out.display()))?;
    println!("{}", guest.kernel_686.display());
    println!("{}", guest.kernel_686_pae.display());
    println!("{}", out.display());
    Ok(())
}
