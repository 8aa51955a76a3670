//! QEMU's firmware configuration device ("fw_cfg") over I/O ports, as
//! described in QEMU's `docs/specs/fw_cfg.rst` and read by SeaBIOS
//! (`src/fw/paravirt.c`, `qemu_cfg_*`).
//!
//! Ports from its base (0x510 on a PC): 0 is the selector (a 16-bit
//! little-endian `OUT`, which reaches the device as two byte writes, low then
//! high), 1 the data port: each byte read returns the next byte of the
//! selected item, and reads past its end return 0. Selecting an item rewinds
//! to its first byte. Only the traditional interface exists: no DMA
//! registers, and `FW_CFG_ID` reports feature bit 0 alone. Items are
//! read-only: data-port writes (removed from the spec in QEMU 2.4) and the
//! write-channel bit 0x4000 of the selector are ignored, as QEMU does. No
//! architecture-local items (selectors 0x8000 and up) exist, so they read as
//! zeros like any unknown selector.
//!
//! Numeric items are little-endian, as QEMU stores them (`fw_cfg_add_i16`,
//! `_i32`, `_i64`); the file directory (`FW_CFG_FILE_DIR`) is big-endian.
//! Named files get selectors from [`FW_CFG_FILE_FIRST`] up in the order they
//! are added, [`FW_CFG_FILE_SLOTS`] of them as in QEMU; the directory lists
//! them sorted by name, as QEMU does. (QEMU also renumbers files to keep
//! selectors in name order; here a selector stays what [`FwCfg::add_file`]
//! returned.)
//!
//! Linux boot follows QEMU's `x86_load_linux` (hw/i386/x86-common.c): the
//! machine hands over the real-mode setup and protected-mode kernel of a
//! bzImage ([`split_bzimage`] cuts one), and the device fills the legacy
//! `FW_CFG_SETUP_*`, `FW_CFG_KERNEL_*`, `FW_CFG_CMDLINE_*` and
//! `FW_CFG_INITRD_*` items with the load addresses QEMU picks for the boot
//! protocol, patching the setup header (loader type, command line pointer,
//! heap end, initrd address and size, `vga=` video mode) the way QEMU does,
//! so SeaBIOS's linuxboot option ROM can copy and start the kernel. Where
//! QEMU refuses to start (an initrd for a pre-2.00 kernel, or one too large
//! for the space below `initrd_addr_max`) the items are still filled in
//! (the oversized initrd at address 0); QEMU's `setup_data` additions (RNG
//! seed, device tree) are not made.
//!
//! The selector's byte pairing: a byte written at offset 0 after a data-port
//! access (or after a completed pair) is a low byte and selects that item at
//! once (so an 8-bit `OUT` selects items below 0x100); the next byte at
//! offset 0 is the high byte and completes the selection.
//!
//! ```
//! use oxide86_devices::fw_cfg::{FwCfg, FW_CFG_SIGNATURE, PORT_DATA, PORT_SELECTOR};
//! use oxide86_devices::PortIo;
//!
//! let mut fw = FwCfg::new();
//! fw.write(PORT_SELECTOR, FW_CFG_SIGNATURE as u8);
//! fw.write(PORT_SELECTOR, (FW_CFG_SIGNATURE >> 8) as u8);
//! let sig: Vec<u8> = (0..4).map(|_| fw.read(PORT_DATA)).collect();
//! assert_eq!(sig, b"QEMU");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::PortIo;

/// The PC's base port (0x510 selector, 0x511 data).
pub const FW_CFG_BASE: u16 = 0x510;
/// Offset of the selector register (16-bit, little-endian, write only).
pub const PORT_SELECTOR: u16 = 0;
/// Offset of the data register (byte reads stream the selected item).
pub const PORT_DATA: u16 = 1;

/// "QEMU", the signature SeaBIOS checks before using the device.
pub const FW_CFG_SIGNATURE: u16 = 0x0000;
/// Feature bits, u32: bit 0 the traditional interface, bit 1 DMA.
pub const FW_CFG_ID: u16 = 0x0001;
/// The machine's UUID, 16 bytes (SMBIOS type 1).
pub const FW_CFG_UUID: u16 = 0x0002;
/// RAM size in bytes, u64.
pub const FW_CFG_RAM_SIZE: u16 = 0x0003;
/// Whether the machine runs without a display, u16.
pub const FW_CFG_NOGRAPHIC: u16 = 0x0004;
/// Number of CPUs started, u16.
pub const FW_CFG_NB_CPUS: u16 = 0x0005;
/// Machine identifier, u16 (used by the non-PC boards).
pub const FW_CFG_MACHINE_ID: u16 = 0x0006;
/// Load address of the protected-mode kernel, u32.
pub const FW_CFG_KERNEL_ADDR: u16 = 0x0007;
/// Size of the protected-mode kernel, u32.
pub const FW_CFG_KERNEL_SIZE: u16 = 0x0008;
/// Legacy command line address item, u32 (not set on a PC; see `CMDLINE_ADDR`).
pub const FW_CFG_KERNEL_CMDLINE: u16 = 0x0009;
/// Load address of the initrd, u32.
pub const FW_CFG_INITRD_ADDR: u16 = 0x000a;
/// Size of the initrd, u32.
pub const FW_CFG_INITRD_SIZE: u16 = 0x000b;
/// The boot device as a drive letter, u16 (`'c'`: first hard disk).
pub const FW_CFG_BOOT_DEVICE: u16 = 0x000c;
/// NUMA topology: u64 node count, then a u64 node per CPU, then per-node sizes.
pub const FW_CFG_NUMA: u16 = 0x000d;
/// Whether the firmware shows its boot menu, u16.
pub const FW_CFG_BOOT_MENU: u16 = 0x000e;
/// Highest CPU count (APIC ID limit), u16.
pub const FW_CFG_MAX_CPUS: u16 = 0x000f;
/// Entry point of a kernel loaded by other means, u32 (not set here).
pub const FW_CFG_KERNEL_ENTRY: u16 = 0x0010;
/// The protected-mode kernel's bytes.
pub const FW_CFG_KERNEL_DATA: u16 = 0x0011;
/// The initrd's bytes.
pub const FW_CFG_INITRD_DATA: u16 = 0x0012;
/// Load address of the command line, u32.
pub const FW_CFG_CMDLINE_ADDR: u16 = 0x0013;
/// Size of the command line including its NUL, u32.
pub const FW_CFG_CMDLINE_SIZE: u16 = 0x0014;
/// The command line's bytes, NUL-terminated.
pub const FW_CFG_CMDLINE_DATA: u16 = 0x0015;
/// Load address of the real-mode setup, u32.
pub const FW_CFG_SETUP_ADDR: u16 = 0x0016;
/// Size of the real-mode setup, u32.
pub const FW_CFG_SETUP_SIZE: u16 = 0x0017;
/// The real-mode setup's bytes, header patched as QEMU does.
pub const FW_CFG_SETUP_DATA: u16 = 0x0018;
/// The file directory: be32 count, then [`FILE_DIR_ENTRY_LEN`]-byte entries.
pub const FW_CFG_FILE_DIR: u16 = 0x0019;
/// The first selector given to a named file.
pub const FW_CFG_FILE_FIRST: u16 = 0x0020;

/// Selector bit asking for the (removed) write channel; ignored on reads.
const FW_CFG_WRITE_CHANNEL: u16 = 0x4000;
/// Number of file selectors, QEMU's default (`x-file-slots`, 0x20).
pub const FW_CFG_FILE_SLOTS: u16 = 0x20;
/// The last selector a file may take.
const FW_CFG_FILE_LAST: u16 = FW_CFG_FILE_FIRST + FW_CFG_FILE_SLOTS - 1;
/// `FW_CFG_ID` bit 0: the traditional selector/data interface.
const FEATURE_TRADITIONAL: u32 = 1 << 0;

/// Longest file name in bytes (the directory's 56-byte field keeps a NUL).
pub const FW_CFG_MAX_FILE_NAME: usize = 55;
/// Size of the name field of a directory entry.
const FILE_NAME_FIELD: usize = 56;
/// Size of one directory entry: be32 size, be16 select, be16 reserved, name.
pub const FILE_DIR_ENTRY_LEN: usize = 8 + FILE_NAME_FIELD;
/// Size of one `etc/e820` entry: u64 address, u64 length, u32 type (packed).
pub const E820_ENTRY_LEN: usize = 20;
/// The name of the memory map file SeaBIOS reads.
pub const E820_FILE: &str = "etc/e820";
/// e820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type of reserved memory.
pub const E820_RESERVED: u32 = 2;

/// Offset in the setup of the "HdrS" magic of boot protocol 2.00 and later.
const HDR_MAGIC: usize = 0x202;
/// Offset of the boot protocol version, u16.
const HDR_VERSION: usize = 0x206;
/// Offset of `type_of_loader`, u8.
const HDR_TYPE_OF_LOADER: usize = 0x210;
/// Offset of `loadflags`, u8 (bit 0 LOADED_HIGH, bit 7 CAN_USE_HEAP).
const HDR_LOADFLAGS: usize = 0x211;
/// Offset of `ramdisk_image`, u32.
const HDR_RAMDISK_IMAGE: usize = 0x218;
/// Offset of `ramdisk_size`, u32.
const HDR_RAMDISK_SIZE: usize = 0x21c;
/// Offset of `heap_end_ptr`, u16.
const HDR_HEAP_END_PTR: usize = 0x224;
/// Offset of `cmd_line_ptr`, u32 (protocol 2.02 and later).
const HDR_CMD_LINE_PTR: usize = 0x228;
/// Offset of `initrd_addr_max`, u32 (protocol 2.03 and later).
const HDR_INITRD_ADDR_MAX: usize = 0x22c;
/// Offset of the old command line magic (protocols before 2.02), u16.
const HDR_OLD_CL_MAGIC: usize = 0x20;
/// Offset of the old command line offset from the setup segment, u16.
const HDR_OLD_CL_OFFSET: usize = 0x22;
/// The old command line magic value.
const OLD_CL_MAGIC: u16 = 0xa33f;
/// Offset of `vid_mode`, u16 (set from a `vga=` command line option).
const HDR_VID_MODE: usize = 0x1fa;
/// Offset of `xloadflags`, u16 (protocol 2.12 and later).
const HDR_XLOADFLAGS: usize = 0x236;
/// `xloadflags` bit 1: the initrd may sit anywhere (QEMU then caps at 4 GiB).
const XLF_CAN_BE_LOADED_ABOVE_4G: u64 = 1 << 1;
/// Offset of `setup_sects`, u8 (0 means 4).
const HDR_SETUP_SECTS: usize = 0x1f1;
/// `loadflags` bit 0: the kernel loads at 1 MiB.
const LOADED_HIGH: u8 = 1 << 0;
/// `loadflags` bit 7: `heap_end_ptr` is valid.
const CAN_USE_HEAP: u8 = 1 << 7;
/// `type_of_loader` value QEMU writes (0xB0: loader id 0x0B, "qemu").
const LOADER_QEMU: u8 = 0xb0;
/// `initrd_addr_max` for protocols before 2.03.
const OLD_INITRD_MAX: u32 = 0x37ff_ffff;
/// Room QEMU leaves below the top of low RAM for ACPI tables.
const ACPI_DATA_SIZE: u64 = 0x20000 + 0x8000;
/// Top of RAM below 4 GiB on the PC memory map (the PCI hole starts here).
const BELOW_4G_MAX: u64 = 0xe000_0000;

/// Why a named file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FwCfgError {
    /// The name is longer than [`FW_CFG_MAX_FILE_NAME`] bytes (its length).
    NameTooLong(usize),
    /// The name is empty or contains a NUL, which the directory cannot hold.
    InvalidName,
    /// A file of that name exists already.
    Duplicate(String),
    /// All [`FW_CFG_FILE_SLOTS`] file selectors are in use.
    TooManyFiles,
    /// The data is longer than the directory's u32 size field (its length).
    TooLarge(usize),
}

impl fmt::Display for FwCfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameTooLong(len) => write!(
                f,
                "fw_cfg file name is {len} bytes, more than {FW_CFG_MAX_FILE_NAME}"
            ),
            Self::InvalidName => write!(f, "fw_cfg file name is empty or contains NUL"),
            Self::Duplicate(name) => write!(f, "fw_cfg file {name:?} exists already"),
            Self::TooManyFiles => write!(f, "no fw_cfg file selectors left"),
            Self::TooLarge(len) => write!(f, "fw_cfg file of {len} bytes is over 4 GiB"),
        }
    }
}

impl std::error::Error for FwCfgError {}

/// Cuts a bzImage into its real-mode setup and protected-mode kernel, as
/// QEMU does: the setup is `setup_sects + 1` sectors (`setup_sects` 0 means
/// 4). `None` if the image is shorter than its setup.
pub fn split_bzimage(image: &[u8]) -> Option<(&[u8], &[u8])> {
    let sects = match image.get(HDR_SETUP_SECTS).copied()? {
        0 => 4,
        n => usize::from(n),
    };
    let setup_len = (sects + 1) * 512;
    (image.len() >= setup_len).then(|| image.split_at(setup_len))
}

/// What [`FwCfg::set_kernel`] and friends were given; the legacy items are
/// rebuilt from it whenever one part changes.
#[derive(Debug, Clone, Default)]
struct LinuxBoot {
    setup: Vec<u8>,
    kernel: Vec<u8>,
    initrd: Option<Vec<u8>>,
    cmdline: Vec<u8>,
}

/// The fw_cfg device: its items, its files and the guest's read position.
#[derive(Debug, Clone)]
pub struct FwCfg {
    /// Item contents by selector (write-channel bit clear).
    items: BTreeMap<u16, Vec<u8>>,
    /// File names; file `i` has selector `FW_CFG_FILE_FIRST + i`.
    files: Vec<String>,
    /// The selected item as written by the guest.
    selector: u16,
    /// Next byte of the selected item the data port returns.
    offset: usize,
    /// The low byte of a selector write waiting for its high byte.
    pending_low: Option<u8>,
    /// RAM size, also bounding where the initrd goes.
    ram_size: u64,
    /// Linux boot inputs, once [`FwCfg::set_kernel`] was called.
    linux: Option<LinuxBoot>,
}

impl Default for FwCfg {
    fn default() -> Self {
        Self::new()
    }
}

impl FwCfg {
    /// A device with QEMU's fixed items for a one-CPU PC with no RAM size
    /// set yet, booting from the first hard disk, and no files.
    pub fn new() -> Self {
        let mut fw = Self {
            items: BTreeMap::new(),
            files: Vec::new(),
            selector: 0,
            offset: 0,
            pending_low: None,
            ram_size: 0,
            linux: None,
        };
        fw.items.insert(FW_CFG_SIGNATURE, b"QEMU".to_vec());
        fw.items
            .insert(FW_CFG_ID, FEATURE_TRADITIONAL.to_le_bytes().to_vec());
        fw.items.insert(FW_CFG_UUID, vec![0; 16]);
        fw.items
            .insert(FW_CFG_RAM_SIZE, 0u64.to_le_bytes().to_vec());
        fw.items
            .insert(FW_CFG_NOGRAPHIC, 0u16.to_le_bytes().to_vec());
        fw.items.insert(FW_CFG_NB_CPUS, 1u16.to_le_bytes().to_vec());
        fw.items
            .insert(FW_CFG_MACHINE_ID, 0u16.to_le_bytes().to_vec());
        let boot = u16::from(b'c');
        fw.items
            .insert(FW_CFG_BOOT_DEVICE, boot.to_le_bytes().to_vec());
        // No NUMA nodes: a zero count, then the node of the one CPU.
        fw.items.insert(FW_CFG_NUMA, vec![0; 16]);
        fw.items
            .insert(FW_CFG_BOOT_MENU, 0u16.to_le_bytes().to_vec());
        fw.items
            .insert(FW_CFG_MAX_CPUS, 1u16.to_le_bytes().to_vec());
        fw.rebuild_dir();
        fw
    }

    /// Sets `FW_CFG_RAM_SIZE` (bytes); it also bounds the initrd's address.
    pub fn set_ram_size(&mut self, bytes: u64) {
        self.ram_size = bytes;
        self.items
            .insert(FW_CFG_RAM_SIZE, bytes.to_le_bytes().to_vec());
        self.rebuild_linux();
    }

    /// Sets `FW_CFG_UUID`.
    pub fn set_uuid(&mut self, uuid: [u8; 16]) {
        self.items.insert(FW_CFG_UUID, uuid.to_vec());
    }

    /// Hands over a Linux kernel: the real-mode `setup` (the first
    /// `setup_sects + 1` sectors of a bzImage) and the protected-mode
    /// `kernel` after it. Fills the setup, kernel and command line items.
    pub fn set_kernel(&mut self, setup: &[u8], kernel: &[u8]) {
        let linux = self.linux.get_or_insert_with(LinuxBoot::default);
        linux.setup = setup.to_vec();
        linux.kernel = kernel.to_vec();
        self.rebuild_linux();
    }

    /// Hands over an initrd; its items appear once a kernel is set.
    pub fn set_initrd(&mut self, initrd: &[u8]) {
        self.linux.get_or_insert_with(LinuxBoot::default).initrd = Some(initrd.to_vec());
        self.rebuild_linux();
    }

    /// Sets the kernel command line (stored with a NUL); its items appear
    /// once a kernel is set.
    pub fn set_cmdline(&mut self, cmdline: &str) {
        self.linux.get_or_insert_with(LinuxBoot::default).cmdline = cmdline.as_bytes().to_vec();
        self.rebuild_linux();
    }

    /// Writes (or replaces) the `etc/e820` file from `(address, length,
    /// type)` entries; returns its selector.
    pub fn set_e820(&mut self, entries: &[(u64, u64, u32)]) -> Result<u16, FwCfgError> {
        let mut data = Vec::with_capacity(entries.len() * E820_ENTRY_LEN);
        for &(address, length, kind) in entries {
            data.extend_from_slice(&address.to_le_bytes());
            data.extend_from_slice(&length.to_le_bytes());
            data.extend_from_slice(&kind.to_le_bytes());
        }
        match self.file_selector(E820_FILE) {
            Some(select) => {
                self.items.insert(select, data);
                self.rebuild_dir();
                Ok(select)
            }
            None => self.add_file(E820_FILE, data),
        }
    }

    /// Adds a named file (such as `etc/boot-fail-wait` or `bootorder`) and
    /// returns its selector. Names must be 1 to [`FW_CFG_MAX_FILE_NAME`]
    /// bytes without NUL, and new.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) -> Result<u16, FwCfgError> {
        if name.len() > FW_CFG_MAX_FILE_NAME {
            return Err(FwCfgError::NameTooLong(name.len()));
        }
        if name.is_empty() || name.contains('\0') {
            return Err(FwCfgError::InvalidName);
        }
        if self.files.iter().any(|f| f == name) {
            return Err(FwCfgError::Duplicate(name.to_string()));
        }
        if u32::try_from(data.len()).is_err() {
            return Err(FwCfgError::TooLarge(data.len()));
        }
        let select = u16::try_from(self.files.len())
            .ok()
            .and_then(|i| FW_CFG_FILE_FIRST.checked_add(i))
            .filter(|&s| s <= FW_CFG_FILE_LAST)
            .ok_or(FwCfgError::TooManyFiles)?;
        self.files.push(name.to_string());
        self.items.insert(select, data);
        self.rebuild_dir();
        Ok(select)
    }

    /// The selector of a named file.
    pub fn file_selector(&self, name: &str) -> Option<u16> {
        let i = self.files.iter().position(|f| f == name)?;
        // add_file keeps every index within u16 range.
        Some(FW_CFG_FILE_FIRST + i as u16)
    }

    /// An item's contents as the guest reads them.
    pub fn item(&self, select: u16) -> Option<&[u8]> {
        self.items
            .get(&(select & !FW_CFG_WRITE_CHANNEL))
            .map(Vec::as_slice)
    }

    /// The selector the guest last wrote.
    pub fn selector(&self) -> u16 {
        self.selector
    }

    fn select(&mut self, select: u16) {
        self.selector = select;
        self.offset = 0;
    }

    fn rebuild_dir(&mut self) {
        let mut order: Vec<(&str, u16)> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, name)| (name.as_str(), FW_CFG_FILE_FIRST + i as u16))
            .collect();
        order.sort_unstable();
        let mut dir = Vec::with_capacity(4 + order.len() * FILE_DIR_ENTRY_LEN);
        dir.extend_from_slice(&(order.len() as u32).to_be_bytes());
        for (name, select) in order {
            let size = self.items.get(&select).map_or(0, Vec::len) as u32;
            dir.extend_from_slice(&size.to_be_bytes());
            dir.extend_from_slice(&select.to_be_bytes());
            dir.extend_from_slice(&0u16.to_be_bytes());
            let mut field = [0u8; FILE_NAME_FIELD];
            field[..name.len()].copy_from_slice(name.as_bytes());
            dir.extend_from_slice(&field);
        }
        self.items.insert(FW_CFG_FILE_DIR, dir);
    }

    /// Recomputes the Linux boot items as QEMU's `x86_load_linux` does.
    fn rebuild_linux(&mut self) {
        const KEYS: [u16; 11] = [
            FW_CFG_KERNEL_ADDR,
            FW_CFG_KERNEL_SIZE,
            FW_CFG_KERNEL_DATA,
            FW_CFG_SETUP_ADDR,
            FW_CFG_SETUP_SIZE,
            FW_CFG_SETUP_DATA,
            FW_CFG_CMDLINE_ADDR,
            FW_CFG_CMDLINE_SIZE,
            FW_CFG_CMDLINE_DATA,
            FW_CFG_INITRD_ADDR,
            FW_CFG_INITRD_SIZE,
        ];
        for key in KEYS.into_iter().chain([FW_CFG_INITRD_DATA]) {
            self.items.remove(&key);
        }
        let Some(linux) = &self.linux else { return };
        if linux.setup.is_empty() && linux.kernel.is_empty() {
            return; // only an initrd or command line so far
        }
        let mut setup = linux.setup.clone();
        let protocol = if setup.get(HDR_MAGIC..HDR_MAGIC + 4) == Some(b"HdrS") {
            get_le(&setup, HDR_VERSION, 2) as u16
        } else {
            0
        };
        let loadflags = setup.get(HDR_LOADFLAGS).copied().unwrap_or(0);
        let mut cmdline = linux.cmdline.clone();
        cmdline.push(0);
        let cmdline_len = len32(&cmdline);
        // QEMU reserves the command line rounded up to 16 bytes.
        let cmdline_room = (cmdline_len.saturating_add(15)) & !15;
        let (real_addr, cmdline_addr, prot_addr): (u32, u32, u32) =
            if protocol < 0x200 || loadflags & LOADED_HIGH == 0 {
                (0x90000, 0x9a000u32.saturating_sub(cmdline_room), 0x10000)
            } else if protocol < 0x202 {
                (0x90000, 0x9a000u32.saturating_sub(cmdline_room), 0x100000)
            } else {
                (0x10000, 0x20000, 0x100000)
            };

        if let Some(mode) = vga_mode(&linux.cmdline) {
            put_le(&mut setup, HDR_VID_MODE, 2, u64::from(mode));
        }
        if protocol >= 0x200 {
            put_le(&mut setup, HDR_TYPE_OF_LOADER, 1, u64::from(LOADER_QEMU));
        }
        let cl_offset = cmdline_addr.wrapping_sub(real_addr);
        if protocol >= 0x202 {
            put_le(&mut setup, HDR_CMD_LINE_PTR, 4, u64::from(cmdline_addr));
        } else {
            put_le(&mut setup, HDR_OLD_CL_MAGIC, 2, u64::from(OLD_CL_MAGIC));
            put_le(&mut setup, HDR_OLD_CL_OFFSET, 2, u64::from(cl_offset));
        }
        if protocol >= 0x201 {
            let heap_end = cl_offset.wrapping_sub(0x200);
            put_le(&mut setup, HDR_HEAP_END_PTR, 2, u64::from(heap_end));
            put_le(
                &mut setup,
                HDR_LOADFLAGS,
                1,
                u64::from(loadflags | CAN_USE_HEAP),
            );
        }

        let initrd = linux.initrd.clone();
        if let Some(initrd) = &initrd {
            let above_4g = get_le(&setup, HDR_XLOADFLAGS, 2) & XLF_CAN_BE_LOADED_ABOVE_4G != 0;
            let mut initrd_max = if protocol >= 0x20c && above_4g {
                u64::from(u32::MAX)
            } else if protocol >= 0x203 {
                get_le(&setup, HDR_INITRD_ADDR_MAX, 4)
            } else {
                u64::from(OLD_INITRD_MAX)
            };
            let low_ram = self.ram_size.min(BELOW_4G_MAX);
            if initrd_max >= low_ram.saturating_sub(ACPI_DATA_SIZE) {
                initrd_max = low_ram.saturating_sub(ACPI_DATA_SIZE + 1);
            }
            let size = u64::from(len32(initrd));
            // Too large an initrd (QEMU refuses to start) lands at 0.
            let addr = (initrd_max.saturating_sub(size) & !4095) as u32;
            put_le(&mut setup, HDR_RAMDISK_IMAGE, 4, u64::from(addr));
            put_le(&mut setup, HDR_RAMDISK_SIZE, 4, size);
            self.put_u32(FW_CFG_INITRD_ADDR, addr);
            self.put_u32(FW_CFG_INITRD_SIZE, size as u32);
            self.items.insert(FW_CFG_INITRD_DATA, initrd.clone());
        }

        let Some(linux) = &self.linux else { return };
        let kernel = linux.kernel.clone();
        self.put_u32(FW_CFG_KERNEL_ADDR, prot_addr);
        self.put_u32(FW_CFG_KERNEL_SIZE, len32(&kernel));
        self.items.insert(FW_CFG_KERNEL_DATA, kernel);
        self.put_u32(FW_CFG_SETUP_ADDR, real_addr);
        self.put_u32(FW_CFG_SETUP_SIZE, len32(&setup));
        self.items.insert(FW_CFG_SETUP_DATA, setup);
        self.put_u32(FW_CFG_CMDLINE_ADDR, cmdline_addr);
        self.put_u32(FW_CFG_CMDLINE_SIZE, cmdline_len);
        self.items.insert(FW_CFG_CMDLINE_DATA, cmdline);
    }

    fn put_u32(&mut self, key: u16, value: u32) {
        self.items.insert(key, value.to_le_bytes().to_vec());
    }
}

/// The video mode a `vga=` option asks for, as QEMU reads it: `normal`,
/// `ext`, `ask`, or a number in C's `strtol(.., 0)` syntax (no digits: 0).
fn vga_mode(cmdline: &[u8]) -> Option<u16> {
    let at = cmdline.windows(4).position(|w| w == b"vga=")?;
    let v = &cmdline[at + 4..];
    if v.starts_with(b"normal") {
        return Some(0xffff);
    }
    if v.starts_with(b"ext") {
        return Some(0xfffe);
    }
    if v.starts_with(b"ask") {
        return Some(0xfffd);
    }
    let (negative, v) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let (radix, digits) = match v {
        [b'0', b'x' | b'X', rest @ ..] if rest.first().is_some_and(u8::is_ascii_hexdigit) => {
            (16, rest)
        }
        [b'0', rest @ ..] => (8, rest),
        _ => (10, v),
    };
    let value = digits
        .iter()
        .map_while(|&d| char::from(d).to_digit(radix))
        .fold(0u64, |acc, d| {
            acc.saturating_mul(u64::from(radix))
                .saturating_add(u64::from(d))
        });
    // QEMU stores the low 16 bits of the (unsigned int) result.
    let value = if negative {
        value.wrapping_neg()
    } else {
        value
    };
    Some(value as u16)
}

/// A length as the u32 the items hold (saturating; no guest data is that big).
fn len32(data: &[u8]) -> u32 {
    u32::try_from(data.len()).unwrap_or(u32::MAX)
}

/// Reads a little-endian field of `len` bytes at `at`; 0 if out of range.
fn get_le(buf: &[u8], at: usize, len: usize) -> u64 {
    buf.get(at..at + len).map_or(0, |b| {
        b.iter()
            .rev()
            .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte))
    })
}

/// Writes a little-endian field of `len` bytes at `at` if the buffer holds it.
fn put_le(buf: &mut [u8], at: usize, len: usize, value: u64) {
    if let Some(field) = buf.get_mut(at..at + len) {
        field.copy_from_slice(&value.to_le_bytes()[..len]);
    }
}

impl PortIo for FwCfg {
    fn read(&mut self, offset: u16) -> u8 {
        match offset {
            PORT_DATA => {
                self.pending_low = None;
                let byte = self
                    .item(self.selector)
                    .and_then(|data| data.get(self.offset).copied());
                match byte {
                    Some(b) => {
                        self.offset += 1;
                        b
                    }
                    None => 0, // past the end, or an unknown selector
                }
            }
            _ => 0, // the selector is write only
        }
    }

    fn write(&mut self, offset: u16, value: u8) {
        match offset {
            PORT_SELECTOR => match self.pending_low.take() {
                None => {
                    self.select(u16::from(value));
                    self.pending_low = Some(value);
                }
                Some(low) => self.select(u16::from_le_bytes([low, value])),
            },
            PORT_DATA => self.pending_low = None, // items are read-only
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(fw: &mut FwCfg, key: u16) {
        fw.write(PORT_DATA, 0); // start a fresh selector pair
        let [lo, hi] = key.to_le_bytes();
        fw.write(PORT_SELECTOR, lo);
        fw.write(PORT_SELECTOR, hi);
    }

    fn read_bytes(fw: &mut FwCfg, len: usize) -> Vec<u8> {
        (0..len).map(|_| fw.read(PORT_DATA)).collect()
    }

    fn read_item(fw: &mut FwCfg, key: u16, len: usize) -> Vec<u8> {
        select(fw, key);
        read_bytes(fw, len)
    }

    fn read_u32(fw: &mut FwCfg, key: u16) -> u32 {
        let b = read_item(fw, key, 4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// A directory entry as SeaBIOS's `qemu_cfg_init` sees it.
    #[derive(Debug, PartialEq)]
    struct DirEntry {
        size: u32,
        select: u16,
        name: String,
    }

    /// Reads the directory the way SeaBIOS does: the be32 count, then the
    /// entries in one continued read of the same item.
    fn read_dir(fw: &mut FwCfg) -> Vec<DirEntry> {
        let count = read_item(fw, FW_CFG_FILE_DIR, 4);
        let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]);
        (0..count)
            .map(|_| {
                let e = read_bytes(fw, FILE_DIR_ENTRY_LEN);
                let name = &e[8..];
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                DirEntry {
                    size: u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
                    select: u16::from_be_bytes([e[4], e[5]]),
                    name: String::from_utf8(name[..end].to_vec()).unwrap(),
                }
            })
            .collect()
    }

    #[test]
    fn signature_and_id() {
        let mut fw = FwCfg::new();
        assert_eq!(read_item(&mut fw, FW_CFG_SIGNATURE, 4), b"QEMU");
        assert_eq!(read_u32(&mut fw, FW_CFG_ID), FEATURE_TRADITIONAL);
        // The write-channel bit reads the same item.
        assert_eq!(
            read_item(&mut fw, FW_CFG_SIGNATURE | FW_CFG_WRITE_CHANNEL, 4),
            b"QEMU"
        );
        // An 8-bit OUT selects an item below 0x100 at once.
        fw.write(PORT_DATA, 0);
        fw.write(PORT_SELECTOR, FW_CFG_SIGNATURE as u8);
        assert_eq!(read_bytes(&mut fw, 4), b"QEMU");
    }

    #[test]
    fn fixed_items() {
        let mut fw = FwCfg::new();
        assert_eq!(read_item(&mut fw, FW_CFG_NB_CPUS, 2), [1, 0]);
        assert_eq!(read_item(&mut fw, FW_CFG_MAX_CPUS, 2), [1, 0]);
        assert_eq!(read_item(&mut fw, FW_CFG_BOOT_DEVICE, 2), [b'c', 0]);
        assert_eq!(read_item(&mut fw, FW_CFG_UUID, 16), [0; 16]);
        fw.set_uuid([7; 16]);
        assert_eq!(read_item(&mut fw, FW_CFG_UUID, 16), [7; 16]);
        assert_eq!(read_item(&mut fw, FW_CFG_NUMA, 8), [0; 8]);
        assert!(read_dir(&mut fw).is_empty());
    }

    #[test]
    fn ram_size_is_le_u64() {
        let mut fw = FwCfg::new();
        fw.set_ram_size(0x1_2345_6000);
        let b = read_item(&mut fw, FW_CFG_RAM_SIZE, 8);
        assert_eq!(u64::from_le_bytes(b.try_into().unwrap()), 0x1_2345_6000);
    }

    #[test]
    fn file_directory_round_trip() {
        let mut fw = FwCfg::new();
        let wait = fw
            .add_file("etc/boot-fail-wait", 5u32.to_le_bytes().to_vec())
            .unwrap();
        let order = fw
            .add_file("bootorder", b"/pci@i0cf8/ide@1,1\n".to_vec())
            .unwrap();
        let long = "x".repeat(FW_CFG_MAX_FILE_NAME);
        let long_sel = fw.add_file(&long, vec![]).unwrap();
        assert_eq!(
            (wait, order, long_sel),
            (
                FW_CFG_FILE_FIRST,
                FW_CFG_FILE_FIRST + 1,
                FW_CFG_FILE_FIRST + 2
            )
        );
        let dir = read_dir(&mut fw);
        let expect = [
            ("bootorder", order, 19),
            ("etc/boot-fail-wait", wait, 4),
            (long.as_str(), long_sel, 0),
        ];
        assert_eq!(dir.len(), expect.len());
        for (entry, (name, select, size)) in dir.iter().zip(expect) {
            assert_eq!(
                entry,
                &DirEntry {
                    size,
                    select,
                    name: name.to_string()
                }
            );
            // Each entry's selector reads the file back.
            assert_eq!(
                read_item(&mut fw, entry.select, size as usize),
                fw.item(select).unwrap()
            );
        }
        assert_eq!(read_u32(&mut fw, wait), 5);
        assert_eq!(fw.file_selector("bootorder"), Some(order));
        assert_eq!(fw.file_selector("nope"), None);
    }

    #[test]
    fn e820_file() {
        let mut fw = FwCfg::new();
        let map = [
            (0, 0x9fc00, E820_RAM),
            (0x9fc00, 0x400, E820_RESERVED),
            (0x100000, 0x7f00000, E820_RAM),
        ];
        let sel = fw.set_e820(&map).unwrap();
        let dir = read_dir(&mut fw);
        assert_eq!(dir.len(), 1);
        assert_eq!(dir[0].name, E820_FILE);
        assert_eq!(dir[0].size as usize, map.len() * E820_ENTRY_LEN);
        let data = read_item(&mut fw, sel, map.len() * E820_ENTRY_LEN);
        for (chunk, &(addr, len, kind)) in data.chunks(E820_ENTRY_LEN).zip(&map) {
            assert_eq!(u64::from_le_bytes(chunk[0..8].try_into().unwrap()), addr);
            assert_eq!(u64::from_le_bytes(chunk[8..16].try_into().unwrap()), len);
            assert_eq!(u32::from_le_bytes(chunk[16..20].try_into().unwrap()), kind);
        }
        // Setting it again replaces it in place.
        assert_eq!(fw.set_e820(&map[..1]), Ok(sel));
        let dir = read_dir(&mut fw);
        assert_eq!((dir.len(), dir[0].size), (1, E820_ENTRY_LEN as u32));
    }

    /// A protocol 2.0f setup of `sects + 1` sectors with LOADED_HIGH set.
    fn bz_setup(sects: u8, initrd_max: u32) -> Vec<u8> {
        let mut s = vec![0u8; (usize::from(sects) + 1) * 512];
        s[HDR_SETUP_SECTS] = sects;
        s[HDR_MAGIC..HDR_MAGIC + 4].copy_from_slice(b"HdrS");
        put_le(&mut s, HDR_VERSION, 2, 0x20f);
        s[HDR_LOADFLAGS] = LOADED_HIGH;
        put_le(&mut s, HDR_INITRD_ADDR_MAX, 4, u64::from(initrd_max));
        s
    }

    #[test]
    fn linux_boot_items() {
        let mut fw = FwCfg::new();
        fw.set_ram_size(128 << 20);
        fw.set_cmdline("console=ttyS0");
        // Nothing appears before the kernel.
        assert_eq!(read_u32(&mut fw, FW_CFG_CMDLINE_SIZE), 0);
        let mut image = bz_setup(3, 0x7fff_ffff);
        image.extend_from_slice(&[0xaa; 3000]);
        let (setup, kernel) = split_bzimage(&image).unwrap();
        assert_eq!((setup.len(), kernel.len()), (2048, 3000));
        fw.set_kernel(setup, kernel);
        fw.set_initrd(&[0x55; 5000]);

        assert_eq!(read_u32(&mut fw, FW_CFG_KERNEL_ADDR), 0x100000);
        assert_eq!(read_u32(&mut fw, FW_CFG_KERNEL_SIZE), 3000);
        assert_eq!(read_item(&mut fw, FW_CFG_KERNEL_DATA, 3000), kernel);
        assert_eq!(read_u32(&mut fw, FW_CFG_SETUP_ADDR), 0x10000);
        assert_eq!(read_u32(&mut fw, FW_CFG_SETUP_SIZE), 2048);
        assert_eq!(read_u32(&mut fw, FW_CFG_CMDLINE_ADDR), 0x20000);
        assert_eq!(read_u32(&mut fw, FW_CFG_CMDLINE_SIZE), 14);
        assert_eq!(
            read_item(&mut fw, FW_CFG_CMDLINE_DATA, 14),
            b"console=ttyS0\0"
        );
        // The initrd sits page-aligned below RAM's top less the ACPI room.
        let top = (128u64 << 20) - ACPI_DATA_SIZE - 1;
        let addr = ((top - 5000) & !4095) as u32;
        assert_eq!(read_u32(&mut fw, FW_CFG_INITRD_ADDR), addr);
        assert_eq!(read_u32(&mut fw, FW_CFG_INITRD_SIZE), 5000);
        assert_eq!(read_item(&mut fw, FW_CFG_INITRD_DATA, 5000), [0x55; 5000]);

        // The setup header is patched as QEMU does.
        let s = read_item(&mut fw, FW_CFG_SETUP_DATA, 2048);
        assert_eq!(s[HDR_TYPE_OF_LOADER], LOADER_QEMU);
        assert_eq!(s[HDR_LOADFLAGS], LOADED_HIGH | CAN_USE_HEAP);
        assert_eq!(get_le(&s, HDR_CMD_LINE_PTR, 4), 0x20000);
        assert_eq!(get_le(&s, HDR_HEAP_END_PTR, 2), 0x10000 - 0x200);
        assert_eq!(get_le(&s, HDR_RAMDISK_IMAGE, 4), u64::from(addr));
        assert_eq!(get_le(&s, HDR_RAMDISK_SIZE, 4), 5000);
        assert_eq!(s[0x300..], setup[0x300..]);
    }

    #[test]
    fn old_protocol_and_initrd_max() {
        let mut fw = FwCfg::new();
        fw.set_ram_size(1 << 30);
        let mut setup = bz_setup(4, 0x37ff_ffff);
        put_le(&mut setup, HDR_VERSION, 2, 0x201);
        fw.set_cmdline("");
        fw.set_kernel(&setup, &[1, 2, 3]);
        assert_eq!(read_u32(&mut fw, FW_CFG_SETUP_ADDR), 0x90000);
        assert_eq!(read_u32(&mut fw, FW_CFG_CMDLINE_SIZE), 1);
        assert_eq!(read_u32(&mut fw, FW_CFG_CMDLINE_ADDR), 0x9a000 - 16);
        let s = fw.item(FW_CFG_SETUP_DATA).unwrap().to_vec();
        assert_eq!(get_le(&s, HDR_OLD_CL_MAGIC, 2), u64::from(OLD_CL_MAGIC));
        assert_eq!(get_le(&s, HDR_OLD_CL_OFFSET, 2), 0xa000 - 16);
        // initrd_addr_max below RAM's top wins (protocol 2.03 and later).
        let mut fw = FwCfg::new();
        fw.set_ram_size(1 << 30);
        fw.set_kernel(&bz_setup(4, 0x0fff_ffff), &[]);
        fw.set_initrd(&[0; 4096]);
        assert_eq!(read_u32(&mut fw, FW_CFG_INITRD_ADDR), 0x0fff_e000);
        // A setup without a header or too short is left alone, without panics.
        fw.set_kernel(&[0; 16], &[9]);
        assert_eq!(fw.item(FW_CFG_SETUP_DATA).unwrap(), [0; 16]);
        assert_eq!(read_u32(&mut fw, FW_CFG_KERNEL_ADDR), 0x10000);
        assert_eq!(split_bzimage(&[0; 100]), None);
    }

    #[test]
    fn vga_option_sets_the_video_mode() {
        assert_eq!(vga_mode(b"root=/dev/sda"), None);
        assert_eq!(vga_mode(b"quiet vga=normal"), Some(0xffff));
        assert_eq!(vga_mode(b"vga=ext"), Some(0xfffe));
        assert_eq!(vga_mode(b"vga=ask x"), Some(0xfffd));
        assert_eq!(vga_mode(b"vga=791 quiet"), Some(791));
        assert_eq!(vga_mode(b"vga=0x317"), Some(0x317));
        assert_eq!(vga_mode(b"vga=010"), Some(8));
        assert_eq!(vga_mode(b"vga=0x"), Some(0));
        assert_eq!(vga_mode(b"vga=-1"), Some(0xffff));
        assert_eq!(vga_mode(b"vga=99999999999999999999999"), Some(0xffff));
        let mut fw = FwCfg::new();
        fw.set_cmdline("vga=0x318");
        fw.set_kernel(&bz_setup(1, 0), &[]);
        let s = fw.item(FW_CFG_SETUP_DATA).unwrap();
        assert_eq!(get_le(s, HDR_VID_MODE, 2), 0x318);
    }

    #[test]
    fn xloadflags_lift_the_initrd_limit() {
        let mut fw = FwCfg::new();
        fw.set_ram_size(1 << 30);
        let mut setup = bz_setup(1, 0x0fff_ffff);
        put_le(&mut setup, HDR_XLOADFLAGS, 2, XLF_CAN_BE_LOADED_ABOVE_4G);
        fw.set_initrd(&[0; 4096]);
        fw.set_kernel(&setup, &[]);
        let top = (1u64 << 30) - ACPI_DATA_SIZE - 1;
        let addr = ((top - 4096) & !4095) as u32;
        assert_eq!(read_u32(&mut fw, FW_CFG_INITRD_ADDR), addr);
    }

    #[test]
    fn past_the_end_and_unknown_selectors_read_zero() {
        let mut fw = FwCfg::new();
        assert_eq!(read_item(&mut fw, FW_CFG_SIGNATURE, 8), b"QEMU\0\0\0\0");
        // Reselecting rewinds.
        assert_eq!(read_item(&mut fw, FW_CFG_SIGNATURE, 2), b"QE");
        for key in [0x001a, 0x0020, 0x3fff, 0x8000, 0x8003, 0xffff] {
            assert_eq!(read_item(&mut fw, key, 4), [0; 4], "key {key:#x}");
            assert_eq!(fw.selector(), key);
        }
        // Data-port writes are ignored and the selector port reads zero.
        select(&mut fw, FW_CFG_SIGNATURE);
        fw.write(PORT_DATA, 0x41);
        assert_eq!(fw.read(PORT_SELECTOR), 0);
        assert_eq!(read_bytes(&mut fw, 4), b"QEMU");
    }

    #[test]
    fn bad_file_names_are_refused() {
        let mut fw = FwCfg::new();
        fw.add_file("bootorder", vec![]).unwrap();
        assert_eq!(
            fw.add_file("bootorder", vec![1]),
            Err(FwCfgError::Duplicate("bootorder".into()))
        );
        let long = "y".repeat(FW_CFG_MAX_FILE_NAME + 1);
        assert_eq!(fw.add_file(&long, vec![]), Err(FwCfgError::NameTooLong(56)));
        assert_eq!(fw.add_file("", vec![]), Err(FwCfgError::InvalidName));
        assert_eq!(fw.add_file("a\0b", vec![]), Err(FwCfgError::InvalidName));
        assert_eq!(read_dir(&mut fw).len(), 1);
        assert!(FwCfgError::NameTooLong(56).to_string().contains("56"));
    }

    #[test]
    fn file_selectors_run_out() {
        let mut fw = FwCfg::new();
        let slots = usize::from(FW_CFG_FILE_LAST - FW_CFG_FILE_FIRST) + 1;
        for i in 0..slots {
            fw.add_file(&format!("f{i}"), vec![]).unwrap();
        }
        assert_eq!(
            fw.add_file("one-more", vec![]),
            Err(FwCfgError::TooManyFiles)
        );
        assert_eq!(read_dir(&mut fw).len(), slots);
    }

    /// A tiny deterministic generator (xorshift64*), so the fuzz is repeatable.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn fuzz_never_panics_and_matches_items() {
        let mut fw = FwCfg::new();
        fw.set_ram_size(64 << 20);
        fw.set_e820(&[(0, 0xa0000, E820_RAM)]).unwrap();
        fw.add_file("bootorder", b"HALT".to_vec()).unwrap();
        fw.set_kernel(&bz_setup(1, u32::MAX), &[3; 10]);
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let keys = [
            0x0000, 0x0001, 0x0019, 0x0020, 0x0021, 0x0018, 0x4000, 0x8000,
        ];
        for _ in 0..200_000 {
            let r = rng.next();
            let offset = (r >> 8) as u16 % 4;
            match r % 8 {
                0..=3 => {
                    fw.read(offset);
                }
                4 => fw.write(offset, (r >> 16) as u8),
                _ => {
                    // A well-formed selection then a checked read.
                    let key = keys[(r >> 16) as usize % keys.len()];
                    let n = (r >> 32) as usize % 100;
                    let got = read_item(&mut fw, key, n);
                    let item = fw.item(key).unwrap_or(&[]);
                    let want: Vec<u8> = (0..n).map(|i| item.get(i).copied().unwrap_or(0)).collect();
                    assert_eq!(got, want, "key {key:#x}");
                }
            }
        }
    }
}
