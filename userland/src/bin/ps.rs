//! `ps`: print the process table.
//!
//! Usage: `ps`. Prints a header, then one row per process sorted by pid:
//! its pid, its parent's pid, its state (`run`, `wait` or `ended`), the
//! CPU it last ran on (`-` if none), the CPU time it used (seconds, two
//! decimals), the memory charged to it (KiB) and its name:
//!
//! ```text
//!   PID  PPID STATE    CPU     TIME      MEM NAME
//!     1     0 wait       0    0.01s     512K init
//! ```
//!
//! Exit status: 0, 1 when not running on Vessel or the output cannot be
//! written, 2 for a usage error.

use std::io::Write;

use userland::sys::{ProcEntry, State};

const NAME: &str = "ps";

const HEADER: &str = "  PID  PPID STATE    CPU     TIME      MEM NAME";

/// One row of the table for `p`.
fn row(p: &ProcEntry) -> String {
    let state = match p.state {
        State::Runnable => "run",
        State::Waiting => "wait",
        State::Ended => "ended",
    };
    let cpu = p.cpu.map_or_else(|| "-".to_owned(), |c| c.to_string());
    let centis = p.cpu_ns / 10_000_000;
    let time = format!("{}.{:02}s", centis / 100, centis % 100);
    let mem = format!("{}K", p.memory.div_ceil(1024));
    format!(
        "{:>5} {:>5} {:<5} {:>6} {:>8} {:>8} {}",
        p.pid, p.parent, state, cpu, time, mem, p.name
    )
}

fn main() {
    if std::env::args_os().len() > 1 {
        userland::fail(NAME, "takes no arguments; usage: ps", userland::USAGE);
    }
    let mut procs = match userland::sys::procs() {
        Ok(p) => p,
        Err(e) => userland::fail(NAME, e, userland::FAILURE),
    };
    procs.sort_by_key(|p| p.pid);
    let mut out = userland::stdout();
    let mut write = || -> std::io::Result<()> {
        writeln!(out, "{HEADER}")?;
        for p in &procs {
            writeln!(out, "{}", row(p))?;
        }
        out.flush()
    };
    if write().is_err() {
        userland::output_failed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_line_up_with_the_header() {
        let header = format!(
            "{:>5} {:>5} {:<5} {:>6} {:>8} {:>8} {}",
            "PID", "PPID", "STATE", "CPU", "TIME", "MEM", "NAME"
        );
        assert_eq!(header, HEADER);
        let p = ProcEntry {
            pid: 12,
            parent: 1,
            state: State::Waiting,
            cpu: None,
            cpu_ns: 1_234_567_890,
            memory: 65536,
            name: "sh".into(),
        };
        assert_eq!(row(&p), "   12     1 wait       -    1.23s      64K sh");
        assert_eq!(row(&p).len(), HEADER.len() - "NAME".len() + "sh".len());
    }
}
