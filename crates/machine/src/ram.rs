//! Guest RAM: one anonymous memory mapping (memmap2), so a large guest
//! costs host memory only for the pages it touches.

use memmap2::MmapMut;

/// The guest's RAM, indexed by RAM offset (not physical address; the
/// memory map places it).
#[derive(Debug)]
pub struct GuestRam {
    map: MmapMut,
}

/// RAM could not be reserved.
#[derive(Debug, thiserror::Error)]
#[error("cannot map {size} bytes of guest RAM: {source}")]
pub struct RamError {
    /// The size asked for.
    pub size: usize,
    /// The host's reason.
    #[source]
    pub source: std::io::Error,
}

impl GuestRam {
    /// Maps `size` bytes of zeroed RAM.
    pub fn new(size: usize) -> Result<Self, RamError> {
        let map = MmapMut::map_anon(size.max(1)).map_err(|source| RamError { size, source })?;
        Ok(Self { map })
    }

    /// The size in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the RAM is empty (never: at least one byte is mapped).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The whole RAM as bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.map
    }

    /// The whole RAM as mutable bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Copies `data` to RAM offset `at`; false (nothing copied) if it does not fit.
    pub fn load(&mut self, at: usize, data: &[u8]) -> bool {
        match at.checked_add(data.len()) {
            Some(end) if end <= self.map.len() => {
                self.map[at..end].copy_from_slice(data);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_and_bounded() {
        let mut r = GuestRam::new(8192).unwrap();
        assert_eq!(r.as_slice()[4096], 0);
        assert!(r.load(8190, &[1, 2]));
        assert!(!r.load(8191, &[1, 2]));
        assert_eq!(&r.as_slice()[8190..], &[1, 2]);
    }
}
