//! The background compiler: a thread that owns a [`Compiler`] and turns
//! the regions the dispatcher scanned into code while the guest goes on
//! in the interpreter (the tiered engine's `Engine::background`; see
//! `engine/background.rs` for the dispatcher's side).
//!
//! The compiler is made on the worker's thread, so `JITModule` need not
//! be `Send`; only regions go in and [`CompiledBlock`]s (addresses and
//! boxed instruction copies) come out (results through a
//! `std::sync::mpsc` channel).
//!
//! Jobs wait in a queue the worker takes from by demand, not in order:
//! each has a counter the dispatcher bumps whenever it interprets the
//! block because its translation is still queued ([`Demand`]), and the
//! worker takes the queued job with the highest count (the oldest among
//! equals). A Linux boot queues jobs in bursts (often 30 to 100 behind
//! each other, at about 1 ms each), and in arrival order a block that
//! stays hot waited behind code that had stopped running; the dispatcher
//! interpreted 34 M instructions that way. A flush is a barrier: jobs
//! queued after it are never taken before it.
//! The worker frees code only when told ([`Worker::flush`]) or when it
//! ends, and it ends only when the [`Worker`] is dropped, which joins it.
//! cranelift-jit publishes finished code to every thread (it flushes the
//! other cores' pipelines where the host needs it), so a block compiled
//! here may run on the dispatcher's thread once its result is received.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
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

/// How often the dispatcher wanted a queued job's block (see the module
/// docs).
pub type Demand = Arc<AtomicU64>;

/// What the dispatcher sends.
enum Msg<T> {
    Job(Job<T>, Demand),
    /// Free every block compiled so far: the dispatcher has dropped them.
    Flush,
}

/// The queue between the dispatcher and the worker.
struct Queue<T> {
    msgs: VecDeque<Msg<T>>,
    /// The dispatcher is dropping the worker, or the worker has stopped:
    /// nothing more is taken or sent.
    closed: bool,
}

/// The queue and the condition the worker waits on.
struct Shared<T> {
    queue: Mutex<Queue<T>>,
    ready: Condvar,
}

impl<T> Shared<T> {
    /// The queue, even if a thread panicked holding it (nothing is left
    /// half-done under the lock: pushes and takes are single operations).
    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `msg` for the worker; gives it back once it has stopped.
    fn send(&self, msg: Msg<T>) -> Result<(), Msg<T>> {
        let mut q = self.lock();
        if q.closed {
            return Err(msg);
        }
        q.msgs.push_back(msg);
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// Waits for the next message: the queued job in greatest demand
    /// before the first flush (the oldest among equals), else that flush.
    /// `None` once closed.
    fn take(&self) -> Option<Msg<T>> {
        let mut q = self.lock();
        loop {
            if q.closed {
                return None;
            }
            let barrier = q
                .msgs
                .iter()
                .position(|m| matches!(m, Msg::Flush))
                .unwrap_or(q.msgs.len());
            let mut best: Option<(usize, u64)> = None;
            for (i, m) in q.msgs.iter().take(barrier).enumerate() {
                if let Msg::Job(_, demand) = m {
                    let d = demand.load(Ordering::Relaxed);
                    if best.is_none_or(|(_, b)| d > b) {
                        best = Some((i, d));
                    }
                }
            }
            let at = match best {
                Some((i, _)) => Some(i),
                None if barrier < q.msgs.len() => Some(barrier),
                None => None,
            };
            if let Some(msg) = at.and_then(|i| q.msgs.remove(i)) {
                return Some(msg);
            }
            q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Nothing more is sent or taken; wakes the worker.
    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// The dispatcher's handle on the worker thread.
pub struct Worker<T> {
    /// The job queue, shared with the worker.
    jobs: Arc<Shared<T>>,
    results: Receiver<Done<T>>,
    /// Results the worker has sent, plus one when it ends: while it
    /// equals `received` there is nothing to take, which one atomic load
    /// tells more cheaply than the channel (the dispatcher asks at every
    /// block boundary).
    posted: Arc<AtomicUsize>,
    /// Results taken from the channel.
    received: usize,
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
        let jobs = Arc::new(Shared {
            queue: Mutex::new(Queue {
                msgs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        let taken = Arc::clone(&jobs);
        let (done_tx, results) = channel();
        let current = Arc::new(AtomicU64::new(generation));
        let seen = Arc::clone(&current);
        let posted = Arc::new(AtomicUsize::new(0));
        let posting = Arc::clone(&posted);
        let thread = std::thread::Builder::new()
            .name("oxide86-jit".into())
            .spawn(move || {
                serve(&taken, &done_tx, &seen, &posting);
                // However it ended: the dispatcher's sends now fail, and
                // its next look at the channel finds it closed.
                taken.close();
                drop(done_tx);
                posting.fetch_add(1, Ordering::Release);
            })?;
        Ok(Self {
            jobs,
            results,
            posted,
            received: 0,
            thread: Some(thread),
            generation: current,
            in_flight: 0,
        })
    }

    /// Queues `job`, returning its demand counter (bump it while the
    /// job's block keeps being wanted); gives the job back if the worker
    /// is gone.
    pub fn submit(&mut self, job: Job<T>) -> Result<Demand, Job<T>> {
        let demand = Demand::default();
        match self.jobs.send(Msg::Job(job, Arc::clone(&demand))) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(demand)
            }
            Err(Msg::Job(job, _)) => Err(job),
            // Not what was sent.
            Err(Msg::Flush) => Ok(demand),
        }
    }

    /// A finished job's result, without waiting.
    pub fn try_take(&mut self) -> Result<Done<T>, NoResult> {
        if self.posted.load(Ordering::Acquire) == self.received {
            return Err(NoResult::NotYet);
        }
        match self.results.try_recv() {
            Ok(done) => {
                self.received += 1;
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
            // A worker that is gone has leaked its code: nothing to free.
            let _ = self.jobs.send(Msg::Flush);
        }
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        // Closing the queue ends the worker's loop; it frees its code as
        // it returns (nothing runs any: the dispatcher is going away).
        self.jobs.close();
        if let Some(t) = self.thread.take() {
            // A worker that panicked has nothing left to clean up.
            let _ = t.join();
        }
    }
}

/// The worker's loop: compiles jobs, those in greatest demand first,
/// until the queue closes.
fn serve<T>(jobs: &Shared<T>, done: &Sender<Done<T>>, current: &AtomicU64, posted: &AtomicUsize) {
    let mut compiler = Compiler::new();
    while let Some(msg) = jobs.take() {
        let step = catch_unwind(AssertUnwindSafe(|| match msg {
            Msg::Flush => {
                if let Ok(c) = &mut compiler {
                    // On failure the old generation stays mapped: a leak,
                    // never a use of freed code.
                    let _ = c.flush();
                }
                None
            }
            Msg::Job(job, _) => Some(run(job, &mut compiler, current)),
        }));
        match step {
            Ok(Some(d)) => {
                if done.send(d).is_err() {
                    break;
                }
                posted.fetch_add(1, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Shared<u32> {
        Shared {
            queue: Mutex::new(Queue {
                msgs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    /// Queues a job tagged `tag` with demand `d`.
    fn job(q: &Shared<u32>, tag: u32, d: u64) {
        let mode = Mode {
            cs_base: 0,
            cs_limit: u32::MAX,
            code32: true,
            stack32: true,
            user: false,
            bits: 1,
            flat: 0,
        };
        let job = Job {
            tag,
            generation: 0,
            region: Region { blocks: Vec::new() },
            mode,
            hooks: Hooks::default(),
            optimize: false,
        };
        let demand = Demand::new(AtomicU64::new(d));
        assert!(q.send(Msg::Job(job, demand)).is_ok());
    }

    /// The tag of the next message (`None` for a flush).
    fn next(q: &Shared<u32>) -> Option<u32> {
        match q.take().expect("a message") {
            Msg::Job(job, _) => Some(job.tag),
            Msg::Flush => None,
        }
    }

    #[test]
    fn jobs_in_greatest_demand_go_first_and_equals_in_order() {
        let q = queue();
        job(&q, 1, 0);
        job(&q, 2, 5);
        job(&q, 3, 0);
        job(&q, 4, 5);
        assert_eq!(next(&q), Some(2));
        assert_eq!(next(&q), Some(4));
        assert_eq!(next(&q), Some(1));
        assert_eq!(next(&q), Some(3));
    }

    #[test]
    fn a_flush_is_a_barrier_and_closing_stops_taking_and_sending() {
        let q = queue();
        job(&q, 1, 0);
        assert!(q.send(Msg::Flush).is_ok());
        job(&q, 2, 9);
        assert_eq!(next(&q), Some(1), "the job before the flush");
        assert_eq!(next(&q), None, "then the flush");
        assert_eq!(next(&q), Some(2));
        job(&q, 3, 0);
        q.close();
        assert!(q.take().is_none());
        assert!(q.send(Msg::Flush).is_err());
    }
}
