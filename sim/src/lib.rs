//! `sim` as a library: the parts of the simulator that tests share with
//! the command line.

pub mod input;
pub mod pack;
pub mod spec;
pub mod swarm;
pub mod system;
pub mod timeout;
pub mod wast;

/// The kernel window every `sim` command gives its machine: 64 TiB of the
/// host's 128 TiB user address space (x86_64, 4-level paging), reserved
/// `PROT_NONE` and `MAP_NORESERVE`, so it costs no memory until used. Each
/// linear memory takes a slot of 4 GiB plus a 32 MiB guard, so the window
/// holds about 16,000 live memories. `hal_hosted::Config`'s default stays
/// at 256 GiB, so that tests may run several machines in one process.
pub const WINDOW: usize = 64 << 40;
