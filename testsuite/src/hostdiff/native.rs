//! The native side: a child process running `native/hostdiff_helper.c`
//! (built by `build.rs`) that executes each sequence on the host CPU in a
//! 32-bit process and reports registers, EFLAGS, the data window and any
//! fault. Jobs go one at a time over the child's stdin/stdout.

use std::io::{BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{bail, Context, Result};

use super::compare::{Fault, Outcome};
use super::generate::Case;
use super::layout::DATA_SIZE;

/// Why the helper cannot run here, or `None` when it can.
pub fn unavailable() -> Option<&'static str> {
    if option_env!("HOSTDIFF_HELPER").is_some() {
        None
    } else {
        Some(option_env!("HOSTDIFF_UNAVAILABLE").unwrap_or("the helper was not built"))
    }
}

/// A running helper process.
#[derive(Debug)]
pub struct Helper {
    child: Child,
    input: BufWriter<ChildStdin>,
    output: BufReader<ChildStdout>,
}

impl Helper {
    /// Starts the helper built by `build.rs`.
    pub fn spawn() -> Result<Helper> {
        let Some(path) = option_env!("HOSTDIFF_HELPER") else {
            bail!(
                "hostdiff helper unavailable: {}",
                unavailable().unwrap_or("unknown reason")
            );
        };
        let mut child = Command::new(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start the hostdiff helper {path}"))?;
        let input = BufWriter::new(child.stdin.take().context("helper stdin")?);
        let output = BufReader::new(child.stdout.take().context("helper stdout")?);
        Ok(Helper {
            child,
            input,
            output,
        })
    }

    /// Runs one sequence natively.
    pub fn run(&mut self, case: &Case) -> Result<Outcome> {
        let mut job = Vec::with_capacity(40 + case.code.len() + case.data.len());
        for r in case.regs {
            job.extend_from_slice(&r.to_le_bytes());
        }
        job.extend_from_slice(&case.eflags.to_le_bytes());
        job.extend_from_slice(&(case.code.len() as u32).to_le_bytes());
        job.extend_from_slice(&case.code);
        job.extend_from_slice(&case.data);
        self.input
            .write_all(&job)
            .and_then(|()| self.input.flush())
            .context("writing a job to the hostdiff helper")?;
        let mut head = [0u8; 13 * 4];
        self.output
            .read_exact(&mut head)
            .context("the hostdiff helper stopped (no result)")?;
        let word = |i: usize| {
            u32::from_le_bytes([
                head[4 * i],
                head[4 * i + 1],
                head[4 * i + 2],
                head[4 * i + 3],
            ])
        };
        let mut data = vec![0u8; DATA_SIZE as usize];
        self.output
            .read_exact(&mut data)
            .context("the hostdiff helper stopped (short result)")?;
        let signal = word(0);
        let fault = (signal != 0).then(|| Fault {
            vector: word(1) as u8,
            signal,
        });
        let mut regs = [0u32; 8];
        for (i, r) in regs.iter_mut().enumerate() {
            *r = word(3 + i);
        }
        Ok(Outcome {
            fault,
            regs,
            eip: word(11),
            eflags: word(12),
            data,
            stray: false,
        })
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // Closing stdin ends the helper's loop; reap it.
        let _ = self.input.flush();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
