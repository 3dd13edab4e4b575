//! The host process's resident memory: its peak, for checks that what the
//! kernel allocates on the host stays inside the machine it was given
//! (the fuzz targets check it after every input), and its current size,
//! for density measurements.
//!
//! It owns nothing: one `getrusage` call or `/proc/self/statm` read per
//! query. Invariant: the peak
//! never decreases, so a check after every input fails on the first input
//! that takes the process past a bound, whatever it freed before
//! returning.

/// The most this process has been resident so far, in bytes
/// (`ru_maxrss` of `RUSAGE_SELF`); 0 if the host cannot say.
pub fn peak() -> u64 {
    let mut usage = core::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF is a valid
    // `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: getrusage succeeded, so it filled the struct (which was
    // zeroed before anyway).
    let usage = unsafe { usage.assume_init() };
    // Linux reports kilobytes.
    u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
}

/// This process's resident memory now, in bytes (the second field of
/// `/proc/self/statm`, in pages); 0 if the host cannot say.
pub fn current() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Panic (a crash, to a fuzzer) when the peak resident memory is above
/// `bound` bytes; `what` says what the bound is made of.
///
/// # Panics
/// When it is.
pub fn check_peak(bound: u64, what: &str) {
    let peak = peak();
    assert!(
        peak <= bound,
        "host memory: peak RSS {} MiB, above {} MiB ({what})",
        peak >> 20,
        bound >> 20
    );
}

#[cfg(test)]
mod tests {
    use super::{check_peak, peak};

    #[test]
    fn the_peak_follows_what_is_touched() {
        let before = peak();
        assert!(before > 0, "getrusage reports no peak");
        let block = vec![1u8; 64 << 20];
        // Keep the block alive (and touched) until the peak is read.
        let sum: u64 = block.iter().step_by(4096).map(|&b| u64::from(b)).sum();
        assert_eq!(sum, (64 << 20) / 4096);
        assert!(peak() >= 64 << 20, "peak {} after touching 64 MiB", peak());
        drop(block);
        assert!(peak() >= before, "the peak never drops");
    }

    #[test]
    #[should_panic(expected = "host memory: peak RSS")]
    fn a_bound_below_the_peak_fails() {
        check_peak(peak() / 2, "half of what it is");
    }
}
