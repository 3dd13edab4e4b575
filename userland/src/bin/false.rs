//! `false`: do nothing, unsuccessfully.
//!
//! Usage: `false [ARGS...]` (the arguments are ignored). Exit status: 1.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::FAILURE
}
