//! Builds the host-differential tester's native helper
//! (`native/hostdiff_helper.c`, a 32-bit Linux program) into `OUT_DIR`
//! when the target is x86/x86_64 Linux and `gcc -m32` works. The runner
//! finds it through `HOSTDIFF_HELPER`, or learns why it is missing from
//! `HOSTDIFF_UNAVAILABLE`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=native/hostdiff_helper.c");
    println!("cargo:rerun-if-changed=build.rs");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if !(arch == "x86" || arch == "x86_64") || os != "linux" {
        println!("cargo:rustc-env=HOSTDIFF_UNAVAILABLE=not an x86 Linux host ({arch}-{os})");
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("hostdiff_helper");
    let status = Command::new(std::env::var("HOSTDIFF_CC").unwrap_or_else(|_| "gcc".into()))
        .args(["-m32", "-O2", "-Wall", "-o"])
        .arg(&out)
        .arg("native/hostdiff_helper.c")
        .status();
    match status {
        Ok(s) if s.success() => println!("cargo:rustc-env=HOSTDIFF_HELPER={}", out.display()),
        Ok(s) => {
            println!("cargo:warning=hostdiff: `gcc -m32` failed ({s}); install gcc-multilib to enable the host-differential tester");
            println!("cargo:rustc-env=HOSTDIFF_UNAVAILABLE=`gcc -m32` failed at build time (apt-get install gcc-multilib)");
        }
        Err(e) => {
            println!("cargo:warning=hostdiff: cannot run gcc ({e}); the host-differential tester is disabled");
            println!("cargo:rustc-env=HOSTDIFF_UNAVAILABLE=gcc not found at build time (apt-get install gcc-multilib)");
        }
    }
}
