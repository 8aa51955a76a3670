//! Background translation (the tiered engine with `Engine::background`):
//! the dispatcher scans a hot region (that needs the CPU and the bus),
//! hands it to the worker thread (`worker.rs`) and keeps interpreting the
//! block; a later dispatcher entry installs the finished block.
//!
//! A result is installed only if it is still the one wanted: same
//! generation (a flush since makes it stale, and the worker may already
//! have freed its code), and its key still pending under the same request
//! (a write to the page, drained while the job was in flight, drops the
//! key from `pending`, so the result compiled from the old bytes is
//! retired unrun, and the key may be counted and requested again).

use rustc_hash::FxHashMap;

use super::{Engine, EngineKind, Entry, Key};
use crate::translate::{Hooks, Region};
use crate::worker::{Demand, Done, Job, NoResult, Worker};

/// What comes back with a result.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tag {
    key: Key,
    /// Tells a result from the one of an earlier request for the same key.
    request: u64,
    /// The region holds more than one guest block.
    region: bool,
    /// An optimised compilation of a block already translated.
    optimize: bool,
}

/// The dispatcher's side of background translation.
#[derive(Debug, Default)]
pub(super) struct Background {
    /// `None`: not started yet, or it could not start or died (then
    /// translation is synchronous from here on).
    worker: Option<Worker<Tag>>,
    /// The worker could not be started or died.
    failed: bool,
    /// Keys being compiled, with the request whose result is wanted and
    /// its job's demand counter.
    pending: FxHashMap<Key, (u64, Demand)>,
    next_request: u64,
    /// Jobs sent in the current generation (the most blocks the worker's
    /// module can hold of it).
    pub(super) jobs: usize,
    /// Machine-code bytes of the current generation's background blocks.
    pub(super) code_bytes: usize,
}

impl Engine {
    /// Whether the translation of `key` is being compiled in the background.
    pub(super) fn in_flight(&self, key: &Key) -> bool {
        !self.bg.pending.is_empty() && self.bg.pending.contains_key(key)
    }

    /// [`Engine::in_flight`] for a block the dispatcher is about to
    /// interpret because its translation is not back yet: counts its
    /// `runs` (this entry and those the cold filter skipped) as wants, so
    /// the worker takes its job before those of colder blocks.
    pub(super) fn wanted_in_flight(&self, key: &Key, runs: u32) -> bool {
        if self.bg.pending.is_empty() {
            return false;
        }
        match self.bg.pending.get(key) {
            Some((_, demand)) => {
                demand.fetch_add(u64::from(runs), std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Whether translations now go to the worker: tiered, not verifying
    /// (verify mode translates synchronously), and the worker usable.
    pub(super) fn backgrounded(&self) -> bool {
        self.background
            && self.kind == EngineKind::Tiered
            && self.verifier.is_none()
            && !self.bg.failed
    }

    /// Hands `region` (scanned at `key`) to the worker, starting it at
    /// first use. Gives the region back if the worker cannot take it:
    /// translate it synchronously.
    pub(super) fn submit(
        &mut self,
        key: Key,
        region: Region,
        hooks: Hooks,
        optimize: bool,
    ) -> Result<(), Region> {
        let bg = &mut self.bg;
        if bg.worker.is_none() {
            match Worker::spawn(self.generation) {
                Ok(w) => bg.worker = Some(w),
                Err(_) => {
                    bg.failed = true;
                    return Err(region);
                }
            }
        }
        let Some(worker) = bg.worker.as_mut() else {
            return Err(region);
        };
        bg.next_request += 1;
        let tag = Tag {
            key,
            request: bg.next_request,
            region: region.blocks.len() > 1,
            optimize,
        };
        let job = Job {
            tag,
            generation: self.generation,
            region,
            mode: key.mode,
            hooks,
            optimize,
        };
        let demand = match worker.submit(job) {
            Ok(demand) => demand,
            Err(job) => {
                self.worker_gone();
                return Err(job.region);
            }
        };
        bg.jobs += 1;
        bg.pending.insert(key, (tag.request, demand));
        self.stats.background_jobs += 1;
        Ok(())
    }

    /// Jobs whose results have not been taken.
    pub(super) fn bg_in_flight(&self) -> usize {
        self.bg.worker.as_ref().map_or(0, |w| w.in_flight)
    }

    /// Installs the results the worker has finished, without waiting.
    /// Inline: the dispatcher asks at every boundary, mostly with none in
    /// flight.
    #[inline]
    pub(super) fn poll_background(&mut self) {
        if self.bg_in_flight() > 0 {
            self.take_background_results();
        }
    }

    #[inline(never)]
    fn take_background_results(&mut self) {
        loop {
            let Some(worker) = self.bg.worker.as_mut() else {
                return;
            };
            if worker.in_flight == 0 {
                return;
            }
            match worker.try_take() {
                Ok(done) => self.finish(done),
                Err(NoResult::NotYet) => return,
                Err(NoResult::Gone) => {
                    self.worker_gone();
                    return;
                }
            }
        }
    }

    /// Places one result: installed if still wanted, else discarded.
    fn finish(&mut self, done: Done<Tag>) {
        let Done {
            tag,
            generation,
            result,
            ns,
        } = done;
        self.stats.translate_ns += ns;
        self.stats.background_ns += ns;
        let current = generation == self.generation;
        let wanted = current
            && self
                .bg
                .pending
                .get(&tag.key)
                .is_some_and(|(request, _)| *request == tag.request);
        if wanted {
            self.bg.pending.remove(&tag.key);
        }
        match result {
            // Skipped: its generation was flushed before it was compiled.
            None => {}
            Some(Ok(block)) => {
                self.stats.blocks_translated += 1;
                self.stats.regions += u64::from(tag.region);
                self.stats.selects += block.selects;
                self.stats.optimized += u64::from(tag.optimize);
                if current {
                    self.bg.code_bytes += block.code_bytes;
                    self.stats.code_bytes = self.generation_code_bytes() as u64;
                }
                if wanted {
                    self.install(tag.key, block);
                } else {
                    self.stats.discarded += 1;
                    // Never entered or linked. A block of an older
                    // generation is simply dropped: its code was freed or
                    // is about to be, and nothing refers to it.
                    if current {
                        self.retired.push(block);
                    }
                }
            }
            // The first compilation stays where the optimised one failed.
            Some(Err(_)) if wanted && !tag.optimize => {
                self.stats.untranslatable += 1;
                self.map.insert(tag.key, Entry::Interp);
            }
            Some(Err(_)) => {}
        }
    }

    /// The worker died: forget what it was compiling (those keys are
    /// translated synchronously when they come up again). Its blocks
    /// already installed stay valid: a dead worker leaks its code.
    fn worker_gone(&mut self) {
        self.bg.worker = None;
        self.bg.failed = true;
        self.bg.pending.clear();
    }

    /// Forgets a pending request (its page was written): its result will
    /// be discarded.
    pub(super) fn forget_pending(&mut self, key: &Key) {
        if !self.bg.pending.is_empty() {
            self.bg.pending.remove(key);
        }
    }

    /// Forgets every pending request (every translation was dropped).
    pub(super) fn forget_all_pending(&mut self) {
        self.bg.pending.clear();
    }

    /// After a flush to `self.generation`: older jobs are skipped, and the
    /// worker frees its blocks if it has any of the generation that ended.
    /// The caller has dropped every block of that generation.
    pub(super) fn flush_background(&mut self) {
        let jobs = std::mem::take(&mut self.bg.jobs);
        self.bg.code_bytes = 0;
        if let Some(w) = self.bg.worker.as_mut() {
            w.flush(self.generation, jobs > 0);
        }
    }
}
