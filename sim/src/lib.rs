//! `sim` as a library: the parts of the simulator that tests share with
//! the command line.

pub mod spec;
pub mod wast;
