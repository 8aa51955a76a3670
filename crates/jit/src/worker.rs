//! The background compiler: a thread that owns a [`Compiler`] and turns
//! the regions the dispatcher scanned into code while the guest goes on
//! in the interpreter (the tiered engine's `Engine::background`; see
//! `engine/background.rs` for the dispatcher's side).
//!
//! The compiler is made on the worker's thread, so `JITModule` need not
//! be `Send`; only regions go in and [`CompiledBlock`]s (addresses and
//! boxed instruction copies) come out, through `std::sync::mpsc` channels.
//! The worker frees code only when told ([`Worker::flush`]) or when it
//! ends, and it ends only when the [`Worker`] is dropped, which joins it.
//! cranelift-jit publishes finished code to every thread (it flushes the
//! other cores' pipelines where the host needs it), so a block compiled
//! here may run on the dispatcher's thread once its result is received.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::cache::{CompileError, CompiledBlock, Compiler};
use crate::translate::{Hooks, Mode, Region};

/// A region to compile; `tag` comes back with the result.
#[derive(Debug)]
pub struct Job<T> {
    /// What the dispatcher needs to place the result.
    pub tag: T,
    /// The dispatcher's generation when it scanned the region.
    pub generation: u64,
    /// The scanned guest code.
    pub region: Region,
    /// The mode it was scanned in.
    pub mode: Mode,
    /// The helpers its code calls.
    pub hooks: Hooks,
    /// Compile through Cranelift's optimiser (a hot region again).
    pub optimize: bool,
}

/// The result of a [`Job`].
#[derive(Debug)]
pub struct Done<T> {
    /// The job's tag.
    pub tag: T,
    /// The job's generation.
    pub generation: u64,
    /// The compiled block, or why not; `None` when the job was skipped
    /// because its generation had been flushed before the worker got to it.
    pub result: Option<Result<CompiledBlock, CompileError>>,
    /// Host time spent compiling it, in nanoseconds.
    pub ns: u64,
}

/// What the dispatcher sends.
enum Msg<T> {
    Job(Job<T>),
    /// Free every block compiled so far: the dispatcher has dropped them.
    Flush,
}

/// The dispatcher's handle on the worker thread.
pub struct Worker<T> {
    /// `None` only while dropping (closing it ends the thread).
    jobs: Option<Sender<Msg<T>>>,
    results: Receiver<Done<T>>,
    thread: Option<JoinHandle<()>>,
    /// The dispatcher's generation: jobs of older ones are skipped.
    generation: Arc<AtomicU64>,
    /// Jobs sent whose result has not been taken.
    pub in_flight: usize,
}

impl<T> std::fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

/// Why no result could be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoResult {
    /// None is ready yet.
    NotYet,
    /// The worker is gone (it panicked): nothing more will come.
    Gone,
}

impl<T: Send + 'static> Worker<T> {
    /// Starts a worker for generation `generation`.
    pub fn spawn(generation: u64) -> std::io::Result<Self> {
        let (jobs, job_rx) = channel::<Msg<T>>();
        let (done_tx, results) = channel();
        let current = Arc::new(AtomicU64::new(generation));
        let seen = Arc::clone(&current);
        let thread = std::thread::Builder::new()
            .name("oxide86-jit".into())
            .spawn(move || serve(&job_rx, &done_tx, &seen))?;
        Ok(Self {
            jobs: Some(jobs),
            results,
            thread: Some(thread),
            generation: current,
            in_flight: 0,
        })
    }

    /// Queues `job`; gives it back if the worker is gone.
    pub fn submit(&mut self, job: Job<T>) -> Result<(), Job<T>> {
        let Some(tx) = &self.jobs else {
            return Err(job);
        };
        match tx.send(Msg::Job(job)) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(())
            }
            Err(std::sync::mpsc::SendError(msg)) => match msg {
                Msg::Job(job) => Err(job),
                // Not what was sent.
                Msg::Flush => Ok(()),
            },
        }
    }

    /// A finished job's result, without waiting.
    pub fn try_take(&mut self) -> Result<Done<T>, NoResult> {
        match self.results.try_recv() {
            Ok(done) => {
                self.in_flight -= 1;
                Ok(done)
            }
            Err(TryRecvError::Empty) => Err(NoResult::NotYet),
            Err(TryRecvError::Disconnected) => Err(NoResult::Gone),
        }
    }

    /// The dispatcher moved to `generation`: jobs of older ones still
    /// queued are skipped, and if `free` the worker frees every block it
    /// compiled before (the caller guarantees that none of them is
    /// entered or linked any more; results still on their way are its
    /// to discard).
    pub fn flush(&mut self, generation: u64, free: bool) {
        self.generation.store(generation, Ordering::Release);
        if free {
            if let Some(tx) = &self.jobs {
                // A worker that is gone has leaked its code: nothing to free.
                let _ = tx.send(Msg::Flush);
            }
        }
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        // Closing the channel ends the worker's loop; it frees its code
        // as it returns (nothing runs any: the dispatcher is going away).
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            // A worker that panicked has nothing left to clean up.
            let _ = t.join();
        }
    }
}

/// The worker's loop: compiles jobs in order until the channel closes.
fn serve<T>(jobs: &Receiver<Msg<T>>, done: &Sender<Done<T>>, current: &AtomicU64) {
    let mut compiler = Compiler::new();
    while let Ok(msg) = jobs.recv() {
        let step = catch_unwind(AssertUnwindSafe(|| match msg {
            Msg::Flush => {
                if let Ok(c) = &mut compiler {
                    // On failure the old generation stays mapped: a leak,
                    // never a use of freed code.
                    let _ = c.flush();
                }
                None
            }
            Msg::Job(job) => Some(run(job, &mut compiler, current)),
        }));
        match step {
            Ok(Some(d)) => {
                if done.send(d).is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(_) => {
                // Cranelift panicked: the module may be half-updated, and
                // the dispatcher may still run blocks of it. Leak it (its
                // code stays valid) and stop; the dispatcher sees the
                // channel close and translates on its own thread.
                std::mem::forget(compiler);
                return;
            }
        }
    }
}

/// Compiles one job (or skips it if its generation is gone).
fn run<T>(
    job: Job<T>,
    compiler: &mut Result<Compiler, CompileError>,
    current: &AtomicU64,
) -> Done<T> {
    let start = Instant::now();
    let result = if job.generation < current.load(Ordering::Acquire) {
        None
    } else {
        Some(match compiler {
            Ok(c) => c.compile(&job.region, job.mode, job.hooks, job.optimize),
            Err(e) => Err(CompileError(e.0.clone())),
        })
    };
    Done {
        tag: job.tag,
        generation: job.generation,
        result,
        ns: start.elapsed().as_nanos() as u64,
    }
}
