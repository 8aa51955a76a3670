//! The Debian i386 guest for the Linux boot test: Debian's `686` and
//! `686-pae` kernels and a static busybox, fetched by
//! `scripts/fetch-debian-guest.sh` and cached, and an initramfs built here
//! around the project's own `/init`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The prompt `/init` gives the shell, so a test can tell when a command
/// has finished.
pub const PROMPT: &str = "oxide86-guest# ";

/// The initramfs's `/init`: mount the pseudo file systems, then a shell on
/// the console with job control.
pub const INIT_SCRIPT: &str = "#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
export PS1='oxide86-guest# '
echo \"oxide86 initramfs: Linux $(uname -r) on $(uname -m)\"
exec setsid cttyhack sh
";

/// Where the fetched guest lives: `$OXIDE86_GUEST_CACHE`, or
/// `target/debian-guest` in the workspace.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("OXIDE86_GUEST_CACHE") {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join("target/debian-guest"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The fetched files.
#[derive(Clone, Debug)]
pub struct DebianGuest {
    /// `linux-image-*-686`'s bzImage.
    pub kernel_686: PathBuf,
    /// `linux-image-*-686-pae`'s bzImage.
    pub kernel_686_pae: PathBuf,
    /// busybox-static for i386.
    pub busybox: PathBuf,
    /// The package versions, one per line.
    pub versions: String,
}

/// Fetches the guest into [`cache_dir`] unless it is already there.
pub fn fetch() -> Result<DebianGuest> {
    let dir = cache_dir();
    let script = workspace_root().join("scripts/fetch-debian-guest.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} {} failed ({status}): the Debian i386 kernels and busybox could not be had",
            script.display(),
            dir.display()
        );
    }
    let guest = DebianGuest {
        kernel_686: dir.join("vmlinuz-686"),
        kernel_686_pae: dir.join("vmlinuz-686-pae"),
        busybox: dir.join("busybox"),
        versions: std::fs::read_to_string(dir.join("VERSIONS")).unwrap_or_default(),
    };
    for f in [&guest.kernel_686, &guest.kernel_686_pae, &guest.busybox] {
        if !f.is_file() {
            bail!("{} is missing after the fetch", f.display());
        }
    }
    Ok(guest)
}

/// An uncompressed initramfs (a "newc" cpio archive, the format the kernel
/// unpacks: Documentation/driver-api/early-userspace/buffer-format.rst)
/// holding `/init`, `/bin/busybox`, `/dev/console` and the mount points.
pub fn initramfs(busybox: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ino = 1;
    let mut entry = |out: &mut Vec<u8>, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]| {
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            if mode & 0o040000 != 0 { 2 } else { 1 },
            0, // mtime
            data.len() as u32,
            0,
            0, // device of the file system
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        ino += 1;
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad4(out);
        out.extend_from_slice(data);
        pad4(out);
    };
    for dir in ["bin", "dev", "proc", "sys", "tmp"] {
        entry(&mut out, dir, 0o040755, (0, 0), &[]);
    }
    entry(&mut out, "dev/console", 0o020600, (5, 1), &[]);
    entry(&mut out, "init", 0o100755, (0, 0), INIT_SCRIPT.as_bytes());
    entry(&mut out, "bin/busybox", 0o100755, (0, 0), busybox);
    entry(&mut out, "TRAILER!!!", 0, (0, 0), &[]);
    out
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_archive_layout() {
        let a = initramfs(b"BUSYBOX");
        assert_eq!(&a[..6], b"070701");
        assert_eq!(a.len() % 4, 0);
        // The first entry is the "bin" directory: name size 4 ("bin\0").
        assert_eq!(&a[94..102], b"00000004");
        assert_eq!(&a[110..114], b"bin\0");
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("init\0"));
        assert!(text.contains("BUSYBOX"));
        assert!(text.ends_with("TRAILER!!!\0\0\0\0"), "trailer, padded to 4");
    }
}
