//! Malformed kernel images must give errors, never panics: random bytes
//! with a Linux setup header or a Multiboot header planted in them.

use oxide86_machine::pc::{BootSource, Pc, PcConfig};

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn random_images_with_planted_headers_never_panic() {
    let mut x = 0x1234_5678_9ABC_DEF0u64;
    for i in 0..400 {
        let len = (xorshift(&mut x) % 20_000) as usize + 1;
        let mut img: Vec<u8> = (0..len).map(|_| xorshift(&mut x) as u8).collect();
        let config = PcConfig {
            ram_bytes: 4 << 20,
            max_instructions: Some(2_000),
            ..PcConfig::default()
        };
        let boot = if i % 2 == 0 {
            if img.len() > 0x240 {
                img[0x202..0x206].copy_from_slice(b"HdrS");
                img[0x1FE] = 0x55;
                img[0x1FF] = 0xAA;
                img[0x206] = (xorshift(&mut x) % 0x10) as u8;
                img[0x207] = 2;
            }
            BootSource::Linux {
                kernel: img,
                initrd: Some(vec![1; (xorshift(&mut x) % 100_000) as usize]),
                cmdline: "x".into(),
            }
        } else {
            let at = (xorshift(&mut x) as usize % img.len().min(8192)) & !3;
            if img.len() >= at + 32 {
                let flags = xorshift(&mut x) as u32 & 0x0001_0003;
                let magic = 0x1BAD_B002u32;
                img[at..at + 4].copy_from_slice(&magic.to_le_bytes());
                img[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
                img[at + 8..at + 12]
                    .copy_from_slice(&0u32.wrapping_sub(magic.wrapping_add(flags)).to_le_bytes());
            }
            BootSource::Multiboot {
                kernel: img,
                cmdline: String::new(),
                modules: Vec::new(),
            }
        };
        if let Ok(mut pc) = Pc::new(config, boot) {
            let _ = pc.run();
        }
    }
}
