//! `true`: do nothing, successfully.
//!
//! Usage: `true [ARGS...]` (the arguments are ignored). Exit status: 0.

fn main() {}
