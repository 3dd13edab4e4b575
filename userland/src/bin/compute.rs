//! `compute`: CPU-bound work, a demo program.
//!
//! Usage: `compute [N]`: sums N (default 10 000 000) terms of a fixed
//! arithmetic series (wrapping 64-bit arithmetic, the same result every
//! run) and prints `compute: RESULT`.
//!
//! Exit status: 0, 1 when the output cannot be written, 2 for a usage
//! error.

use std::hint::black_box;

const NAME: &str = "compute";
const USAGE: &str = "usage: compute [N]";
const DEFAULT_STEPS: u64 = 10_000_000;

/// The sum of the first `steps` terms `i * i + 3 * i + 7` (`i` from 0),
/// wrapping.
fn series(steps: u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..steps {
        // Kept opaque, so the loop is run rather than folded into a
        // closed form.
        let i = black_box(i);
        sum = sum.wrapping_add(i.wrapping_mul(i).wrapping_add(3 * i).wrapping_add(7));
    }
    sum
}

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let steps = userland::optional_number(NAME, USAGE, &args, "count", DEFAULT_STEPS);
    let result = series(steps);
    userland::print_line(format_args!("{NAME}: {result}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_closed_form() {
        // Sum of i² + 3i + 7 for i < n: (n-1)n(2n-1)/6 + 3n(n-1)/2 + 7n.
        let n = 1000u64;
        let want = (n - 1) * n * (2 * n - 1) / 6 + 3 * n * (n - 1) / 2 + 7 * n;
        assert_eq!(series(n), want);
        assert_eq!(series(0), 0);
    }
}
