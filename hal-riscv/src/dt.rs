//! Device-tree extraction: the few facts the HAL needs, copied out of the
//! flattened device tree (through the `fdt` crate) into plain structs.
//!
//! What is read: `/memory*` (`device_type = "memory"`) ranges, the memory
//! reservation block and `/reserved-memory/*`, `/cpus/cpu@N` hart ids whose
//! `status` is absent or `okay`, `timebase-frequency` (of `/cpus`, else of
//! the first hart), `/chosen/bootargs`, `/chosen/rng-seed` and the boot
//! image's `/chosen/linux,initrd-start` and `-end` (QEMU `-initrd`), the 16550
//! UART (`/chosen/stdout-path` when it names one, else the first
//! `ns16550a`, with its `interrupts`), the `sifive,test1` finisher, the
//! `virtio,mmio` slots (what is in a slot is asked of the slot itself),
//! each usable hart's ISA (`riscv,isa-extensions`, else `riscv,isa`;
//! the harts' intersection is kept),
//! and the PLIC (`riscv,plic0`) with each hart's supervisor context, read
//! from its `interrupts-extended` against the harts' interrupt
//! controllers. Bus `ranges` are taken to
//! be identity (true of QEMU `virt`'s `/soc`).
//!
//! Invariants:
//! - INV-DT-1: nothing here panics on a malformed device tree: missing or
//!   ill-sized properties become a [`DtError`] (required facts) or are
//!   skipped (optional ones). The header is checked before `fdt` is
//!   trusted with offsets; `fdt` still asserts on a structurally corrupt
//!   structure block, which then reaches the panic handler (a report and
//!   exit status `PANIC`).
//! - INV-DT-2: [`BoardInfo::harts`] keeps device-tree order, so logical CPU
//!   numbers are stable across boots.

use core::fmt;

use fdt::Fdt;
use fdt::node::FdtNode;
use kernel_core::hal::{PhysAddr, PhysRange, RiscvExtensions};

use crate::fixed::FixedVec;
use crate::layout::EMPTY_RANGE;

/// Most `/memory` ranges kept.
pub const MAX_RAM_RANGES: usize = 16;
/// Most reserved ranges kept (reservation block plus `/reserved-memory`).
pub const MAX_RESERVED: usize = 16;
/// Most harts listed (the HAL uses at most `layout::MAX_HARTS`).
pub const MAX_DT_HARTS: usize = 64;
/// Most `virtio,mmio` slots kept (QEMU `virt` has eight).
pub const MAX_VIRTIO: usize = 16;

const FDT_MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
/// Largest device tree accepted (QEMU's is under 16 KiB).
pub const MAX_DTB_SIZE: usize = 4 << 20;

/// Why the device tree cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtError {
    /// The header is not a flattened device tree the HAL understands.
    Header(&'static str),
    /// No usable `/memory` range.
    NoMemory,
    /// No `/cpus` node or no usable hart in it.
    NoCpus,
    /// No usable `timebase-frequency`.
    NoTimebase,
    /// A property the HAL needs is malformed.
    BadProperty(&'static str),
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(why) => write!(f, "bad device tree header: {why}"),
            Self::NoMemory => f.write_str("device tree has no usable /memory range"),
            Self::NoCpus => f.write_str("device tree has no usable /cpus/cpu@N"),
            Self::NoTimebase => f.write_str("device tree has no usable timebase-frequency"),
            Self::BadProperty(what) => write!(f, "malformed device tree property {what}"),
        }
    }
}

/// A 16550-compatible UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uart {
    /// Physical address of register 0.
    pub base: u64,
    /// Registers are `1 << reg_shift` bytes apart (`reg-shift`, default 0).
    pub reg_shift: u32,
    /// Access width in bytes, 1 or 4 (`reg-io-width`, default 1).
    pub io_width: u32,
    /// Its interrupt at the PLIC (`interrupts`), if named.
    pub irq: Option<u32>,
}

/// The platform-level interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plic {
    /// Physical address of its registers.
    pub base: u64,
    /// The supervisor-mode context of each hart of [`BoardInfo::harts`],
    /// in the same order (`u32::MAX`: the hart has none).
    pub contexts: FixedVec<u32, MAX_DT_HARTS>,
}

/// Devices the HAL wants before anything else can fail, so that a later
/// error can still be reported and end QEMU with the right status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Devices {
    /// The console UART.
    pub uart: Option<Uart>,
    /// Physical address of the `sifive,test1` finisher.
    pub finisher: Option<u64>,
    /// Physical address of the `google,goldfish-rtc` real-time clock.
    pub rtc: Option<u64>,
}

/// Everything else the HAL reads from the device tree.
#[derive(Clone, Copy, Debug)]
pub struct BoardInfo<'a> {
    /// RAM ranges, in device-tree order.
    pub ram: FixedVec<PhysRange, MAX_RAM_RANGES>,
    /// Reserved ranges (memory reservation block, `/reserved-memory`).
    pub reserved: FixedVec<PhysRange, MAX_RESERVED>,
    /// Hart ids of usable harts, in device-tree order (INV-DT-2).
    pub harts: FixedVec<u64, MAX_DT_HARTS>,
    /// Frequency of the `time` CSR, in Hz (non-zero).
    pub timebase_hz: u64,
    /// `/chosen/bootargs`, empty when absent.
    pub bootargs: &'a str,
    /// `/chosen/rng-seed`, empty when absent.
    pub rng_seed: &'a [u8],
    /// `virtio,mmio` slots: base and size of each register window.
    pub virtio: FixedVec<(u64, u64), MAX_VIRTIO>,
    /// The PLIC, when there is one.
    pub plic: Option<Plic>,
    /// The boot image QEMU loaded (`-initrd`), when there is one.
    pub initrd: Option<PhysRange>,
    /// The ISA extensions every hart in `harts` has ([`hart_isa`]).
    pub isa: RiscvExtensions,
}

/// The extensions of one `cpu` node: its `riscv,isa-extensions` list, else
/// its `riscv,isa` string; RV64GC (what this kernel is built for, so what
/// a hart running it has) when neither is there or the string is not an
/// RV64 one.
fn hart_isa(cpu: FdtNode<'_, '_>) -> RiscvExtensions {
    if let Some(list) = cpu.property("riscv,isa-extensions") {
        let names = list
            .value
            .split(|&b| b == 0)
            .filter_map(|s| core::str::from_utf8(s).ok());
        return RiscvExtensions::from_names(names);
    }
    cpu.property("riscv,isa")
        .and_then(|p| p.as_str())
        .and_then(|s| RiscvExtensions::parse(s).ok())
        .unwrap_or(RiscvExtensions::RV64GC)
}

/// A property holding one address: one cell or two, big-endian.
fn address_prop(node: FdtNode<'_, '_>, name: &str) -> Option<u64> {
    let v = node.property(name)?.value;
    match v.len() {
        4 => be32(v, 0).map(u64::from),
        8 => Some((u64::from(be32(v, 0)?) << 32) | u64::from(be32(v, 4)?)),
        _ => None,
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The total size of the device tree whose header starts `header`, after
/// checking its magic; the HAL uses it to know how much memory to trust.
///
/// # Errors
/// [`DtError::Header`] when the magic is wrong or the size is implausible.
pub fn total_size(header: &[u8; 8]) -> Result<usize, DtError> {
    if be32(header, 0) != Some(FDT_MAGIC) {
        return Err(DtError::Header("bad magic"));
    }
    let size = be32(header, 4).unwrap_or(0) as usize;
    if !(HEADER_LEN..=MAX_DTB_SIZE).contains(&size) {
        return Err(DtError::Header("implausible totalsize"));
    }
    Ok(size)
}

/// Check the header of `blob` (every block inside it) and open it.
///
/// # Errors
/// [`DtError::Header`] for anything `fdt` would otherwise index out of
/// bounds with (INV-DT-1).
pub fn open(blob: &[u8]) -> Result<Fdt<'_>, DtError> {
    let field = |i: usize| {
        be32(blob, 4 * i)
            .map(|v| v as usize)
            .ok_or(DtError::Header("truncated"))
    };
    if field(0)? != FDT_MAGIC as usize {
        return Err(DtError::Header("bad magic"));
    }
    let total = field(1)?;
    if total > blob.len() || total < HEADER_LEN {
        return Err(DtError::Header("totalsize past the blob"));
    }
    let (off_struct, off_strings, off_rsv) = (field(2)?, field(3)?, field(4)?);
    let (version, size_strings, size_struct) = (field(5)?, field(8)?, field(9)?);
    if version < 17 {
        return Err(DtError::Header("version older than 17"));
    }
    let inside = |off: usize, len: usize| off.checked_add(len).is_some_and(|end| end <= total);
    if !inside(off_struct, size_struct)
        || !inside(off_strings, size_strings)
        || !inside(off_rsv, 16)
    {
        return Err(DtError::Header("block outside totalsize"));
    }
    Fdt::new(&blob[..total]).map_err(|_| DtError::Header("rejected by parser"))
}

/// Decode a big-endian cell group of 0, 1 or 2 cells.
fn cells(bytes: &[u8]) -> Option<u64> {
    match bytes.len() {
        0 => Some(0),
        4 => Some(u64::from(u32::from_be_bytes(bytes.try_into().ok()?))),
        8 => Some(u64::from_be_bytes(bytes.try_into().ok()?)),
        _ => None,
    }
}

/// `(address, size)` of every entry of `node`'s `reg`, decoded with the
/// parent's cell sizes; entries that do not fit 64 bits are skipped.
fn regs<'b, 'a>(node: FdtNode<'b, 'a>) -> impl Iterator<Item = (u64, u64)> + 'a {
    node.raw_reg()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((cells(r.address)?, cells(r.size)?)))
}

fn is_okay(node: FdtNode<'_, '_>) -> bool {
    match node.property("status").and_then(|p| p.as_str()) {
        None => true,
        Some(s) => s == "okay" || s == "ok",
    }
}

fn u32_prop(node: FdtNode<'_, '_>, name: &str) -> Option<u32> {
    let p = node.property(name)?;
    Some(u32::from_be_bytes(p.value.try_into().ok()?))
}

fn is_compatible(node: FdtNode<'_, '_>, with: &[&str]) -> bool {
    node.compatible()
        .is_some_and(|c| c.all().any(|s| with.contains(&s)))
}

const UART_COMPATIBLE: &[&str] = &["ns16550a", "ns16550"];
const FINISHER_COMPATIBLE: &[&str] = &["sifive,test1"];
const RTC_COMPATIBLE: &[&str] = &["google,goldfish-rtc"];
const VIRTIO_MMIO_COMPATIBLE: &[&str] = &["virtio,mmio"];
const PLIC_COMPATIBLE: &[&str] = &["riscv,plic0", "sifive,plic-1.0.0"];
/// `interrupts-extended` cause of a supervisor external interrupt.
const CAUSE_SUPERVISOR_EXTERNAL: u32 = 9;

fn uart_of(node: FdtNode<'_, '_>) -> Option<Uart> {
    if !is_compatible(node, UART_COMPATIBLE) || !is_okay(node) {
        return None;
    }
    let (base, _) = regs(node).next()?;
    let reg_shift = u32_prop(node, "reg-shift").unwrap_or(0);
    let io_width = u32_prop(node, "reg-io-width").unwrap_or(1);
    let irq = node
        .property("interrupts")
        .and_then(|p| be32(p.value, 0))
        .filter(|&i| i > 0);
    (reg_shift < 8 && (io_width == 1 || io_width == 4)).then_some(Uart {
        base,
        reg_shift,
        io_width,
        irq,
    })
}

/// Find the console UART and the test finisher. Never fails: what is not
/// there is `None`.
pub fn devices(fdt: &Fdt<'_>) -> Devices {
    let stdout = fdt
        .find_node("/chosen")
        .and_then(|c| c.property("stdout-path"))
        .and_then(|p| p.as_str())
        .map(|path| path.split(':').next().unwrap_or(path))
        .and_then(|path| fdt.find_node(path))
        .and_then(uart_of);
    let uart = stdout.or_else(|| fdt.all_nodes().find_map(uart_of));
    let finisher = fdt
        .all_nodes()
        .find(|n| is_compatible(*n, FINISHER_COMPATIBLE))
        .and_then(|n| regs(n).next())
        .map(|(base, _)| base);
    let rtc = fdt
        .all_nodes()
        .find(|n| is_compatible(*n, RTC_COMPATIBLE) && is_okay(*n))
        .and_then(|n| regs(n).next())
        .map(|(base, _)| base);
    Devices {
        uart,
        finisher,
        rtc,
    }
}

/// Extract the board facts.
///
/// # Errors
/// A [`DtError`] naming the first required fact that is missing or
/// malformed (INV-DT-1).
pub fn parse<'a>(fdt: &Fdt<'a>) -> Result<BoardInfo<'a>, DtError> {
    let root = fdt.find_node("/").ok_or(DtError::Header("no root node"))?;

    let mut ram = FixedVec::new(EMPTY_RANGE);
    for node in root.children() {
        let is_memory = node.property("device_type").and_then(|p| p.as_str()) == Some("memory");
        if !is_memory || !is_okay(node) {
            continue;
        }
        for (start, len) in regs(node).filter(|&(_, len)| len > 0) {
            let _ = ram.push(PhysRange {
                start: PhysAddr(start),
                len,
            });
        }
    }
    if ram.is_empty() {
        return Err(DtError::NoMemory);
    }

    let mut reserved = FixedVec::new(EMPTY_RANGE);
    for r in fdt.memory_reservations() {
        let _ = reserved.push(PhysRange {
            start: PhysAddr(r.address() as u64),
            len: r.size() as u64,
        });
    }
    if let Some(node) = fdt.find_node("/reserved-memory") {
        for child in node.children().filter(|c| is_okay(*c)) {
            for (start, len) in regs(child) {
                let _ = reserved.push(PhysRange {
                    start: PhysAddr(start),
                    len,
                });
            }
        }
    }

    let cpus = fdt.find_node("/cpus").ok_or(DtError::NoCpus)?;
    let mut harts = FixedVec::new(0);
    // The phandle of each hart's interrupt controller, in `harts` order.
    let mut intcs: FixedVec<u32, MAX_DT_HARTS> = FixedVec::new(u32::MAX);
    let mut first_cpu = None;
    let mut isa: Option<RiscvExtensions> = None;
    for cpu in cpus.children() {
        if cpu.name.split('@').next() != Some("cpu") || !is_okay(cpu) {
            continue;
        }
        let Some((id, _)) = regs(cpu).next() else {
            continue;
        };
        first_cpu.get_or_insert(cpu);
        if harts.push(id).is_ok() {
            let this = hart_isa(cpu);
            isa = Some(isa.map_or(this, |all| all.intersect(this)));
            let intc = cpu
                .children()
                .find(|c| c.name.split('@').next() == Some("interrupt-controller"))
                .and_then(|c| u32_prop(c, "phandle"))
                .unwrap_or(u32::MAX);
            let _ = intcs.push(intc);
        }
    }
    if harts.is_empty() {
        return Err(DtError::NoCpus);
    }
    let timebase_hz = cpus
        .property("timebase-frequency")
        .or_else(|| first_cpu.and_then(|c| c.property("timebase-frequency")))
        .ok_or(DtError::NoTimebase)?
        .as_usize()
        .filter(|&hz| hz > 0)
        .ok_or(DtError::NoTimebase)? as u64;

    let chosen = fdt.find_node("/chosen");
    let bootargs = match chosen.and_then(|c| c.property("bootargs")) {
        None => "",
        Some(p) => core::str::from_utf8(p.value)
            .map_err(|_| DtError::BadProperty("/chosen/bootargs (not UTF-8)"))?
            .trim_end_matches('\0'),
    };
    let rng_seed = chosen
        .and_then(|c| c.property("rng-seed"))
        .map_or(&[][..], |p| p.value);
    let initrd = match chosen.map(|c| {
        (
            address_prop(c, "linux,initrd-start"),
            address_prop(c, "linux,initrd-end"),
        )
    }) {
        None | Some((None, None)) => None,
        Some((Some(start), Some(end))) if end >= start => Some(PhysRange {
            start: PhysAddr(start),
            len: end - start,
        }),
        Some(_) => return Err(DtError::BadProperty("/chosen/linux,initrd-start/end")),
    };

    let mut virtio = FixedVec::new((0, 0));
    for node in fdt
        .all_nodes()
        .filter(|n| is_compatible(*n, VIRTIO_MMIO_COMPATIBLE) && is_okay(*n))
    {
        if let Some(slot) = regs(node).next().filter(|&(_, len)| len > 0) {
            let _ = virtio.push(slot);
        }
    }

    let plic = fdt
        .all_nodes()
        .find(|n| is_compatible(*n, PLIC_COMPATIBLE) && is_okay(*n))
        .and_then(|n| {
            let (base, _) = regs(n).next()?;
            let cells = n.property("interrupts-extended")?.value;
            let mut contexts = FixedVec::new(u32::MAX);
            for &intc in intcs.iter() {
                // Context k is the k-th (phandle, cause) pair.
                let context = (0..cells.len() / 8).find(|&k| {
                    be32(cells, 8 * k) == Some(intc)
                        && be32(cells, 8 * k + 4) == Some(CAUSE_SUPERVISOR_EXTERNAL)
                });
                let _ = contexts.push(
                    context
                        .and_then(|k| u32::try_from(k).ok())
                        .unwrap_or(u32::MAX),
                );
            }
            Some(Plic { base, contexts })
        });

    Ok(BoardInfo {
        ram,
        reserved,
        harts,
        timebase_hz,
        bootargs,
        rng_seed,
        virtio,
        plic,
        initrd,
        isa: isa.unwrap_or(RiscvExtensions::RV64GC),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// `qemu-system-riscv64 -machine virt,dumpdtb=... -smp 4 -m 512M
    /// -append "test=fault loglevel=debug"` (QEMU 7.2), compacted by dtc.
    const QEMU_SMP4: &[u8] = include_bytes!("../testdata/qemu-virt-smp4.dtb");
    /// The same with `-smp 1 -m 128M` and no `-append`.
    const QEMU_SMP1: &[u8] = include_bytes!("../testdata/qemu-virt-smp1.dtb");
    /// The same with `-initrd` of a 1,000-byte file (QEMU 7.2).
    const QEMU_INITRD: &[u8] = include_bytes!("../testdata/qemu-virt-initrd.dtb");
    /// `-machine virt,dumpdtb=... -cpu rv64,v=true,vlen=128 -smp 2`
    /// (QEMU's padding after the strings block cut off, `totalsize` set to
    /// match).
    const QEMU_VECTOR: &[u8] = include_bytes!("../testdata/qemu-virt-vector.dtb");
    /// `testdata/edge.dts` compiled by dtc: two memory nodes, reserved
    /// memory, a disabled hart, per-cpu timebase, a cpu-map node, a UART
    /// with reg-shift behind stdout-path, no finisher.
    const EDGE: &[u8] = include_bytes!("../testdata/edge.dtb");

    fn r(start: u64, len: u64) -> PhysRange {
        PhysRange {
            start: PhysAddr(start),
            len,
        }
    }

    #[test]
    fn qemu_virt_smp4() {
        let fdt = open(QEMU_SMP4).unwrap();
        let dev = devices(&fdt);
        assert_eq!(
            dev.uart,
            Some(Uart {
                base: 0x1000_0000,
                reg_shift: 0,
                io_width: 1,
                irq: Some(10),
            })
        );
        assert_eq!(dev.finisher, Some(0x10_0000));
        let b = parse(&fdt).unwrap();
        assert_eq!(&*b.ram, &[r(0x8000_0000, 512 << 20)]);
        assert_eq!(&*b.harts, &[0, 1, 2, 3]);
        assert_eq!(b.timebase_hz, 10_000_000);
        assert_eq!(b.bootargs, "test=fault loglevel=debug");
        assert_eq!(b.rng_seed.len(), 32);
        assert!(b.reserved.is_empty());
        // Eight slots, 4 KiB apart from 0x1000_1000 (in whatever order the
        // tree lists them).
        let mut slots: std::vec::Vec<_> = b.virtio.iter().copied().collect();
        slots.sort_unstable();
        let expected: std::vec::Vec<_> = (1..=8)
            .map(|i| (0x1000_0000 + i * 0x1000, 0x1000))
            .collect();
        assert_eq!(slots, expected);
        // Each hart's supervisor context: QEMU lists M then S per hart.
        let plic = b.plic.expect("a PLIC");
        assert_eq!(plic.base, 0xc00_0000);
        assert_eq!(&*plic.contexts, &[1, 3, 5, 7]);
    }

    #[test]
    fn hart_isa_strings() {
        use kernel_core::hal::RiscvExt;
        let plain = parse(&open(QEMU_SMP4).unwrap()).unwrap().isa;
        let vector = parse(&open(QEMU_VECTOR).unwrap()).unwrap().isa;
        for isa in [plain, vector] {
            assert!(isa.has(RiscvExt::D) && isa.has(RiscvExt::Zba) && isa.has(RiscvExt::Zbs));
        }
        assert!(!plain.has(RiscvExt::V));
        assert!(vector.has(RiscvExt::V) && vector.has(RiscvExt::Zvl128b));
        // No ISA string at all (edge.dts): what the kernel is built for.
        let edge = parse(&open(EDGE).unwrap()).unwrap().isa;
        assert_eq!(edge, RiscvExtensions::RV64GC);
    }

    #[test]
    fn qemu_virt_smp1_without_bootargs() {
        let fdt = open(QEMU_SMP1).unwrap();
        let b = parse(&fdt).unwrap();
        assert_eq!(&*b.ram, &[r(0x8000_0000, 128 << 20)]);
        assert_eq!(&*b.harts, &[0]);
        assert_eq!(b.bootargs, "");
        assert_eq!(b.initrd, None);
    }

    #[test]
    fn qemu_virt_with_an_initrd() {
        let fdt = open(QEMU_INITRD).unwrap();
        let b = parse(&fdt).unwrap();
        assert_eq!(b.initrd, Some(r(0x8420_0000, 1000)));
    }

    #[test]
    fn edge_cases_inv_dt_2() {
        let fdt = open(EDGE).unwrap();
        let dev = devices(&fdt);
        assert_eq!(
            dev.uart,
            Some(Uart {
                base: 0x1001_0000,
                reg_shift: 2,
                io_width: 4,
                irq: None,
            })
        );
        assert_eq!(dev.finisher, None);
        let b = parse(&fdt).unwrap();
        assert_eq!(
            &*b.ram,
            &[r(0x8000_0000, 0x1000_0000), r(0x1_0000_0000, 0x1000_0000)]
        );
        assert_eq!(
            &*b.reserved,
            &[r(0x8f00_0000, 0x1000), r(0x8800_0000, 0x10_0000)]
        );
        // cpu@1 is disabled; cpu-map is not a cpu; DT order is kept.
        assert_eq!(&*b.harts, &[5, 0, 2]);
        assert_eq!(b.timebase_hz, 1_000_000);
        assert_eq!(b.bootargs, "log=info");
        assert!(b.rng_seed.is_empty());
    }

    #[test]
    fn header_checks_inv_dt_1() {
        assert_eq!(
            open(&QEMU_SMP4[..6]).err(),
            Some(DtError::Header("truncated"))
        );
        let mut bad = QEMU_SMP4.to_vec();
        bad[0] = 0;
        assert_eq!(open(&bad).err(), Some(DtError::Header("bad magic")));
        assert!(total_size(bad[..8].try_into().unwrap()).is_err());
        assert_eq!(
            total_size(QEMU_SMP4[..8].try_into().unwrap()),
            Ok(QEMU_SMP4.len())
        );
        let cut = &QEMU_SMP4[..QEMU_SMP4.len() - 1];
        assert_eq!(
            open(cut).err(),
            Some(DtError::Header("totalsize past the blob"))
        );
        let mut bad = QEMU_SMP4.to_vec();
        bad[8..12].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert_eq!(
            open(&bad).err(),
            Some(DtError::Header("block outside totalsize"))
        );
        let mut huge = QEMU_SMP4[..8].to_vec();
        huge[4..8].copy_from_slice(&(64u32 << 20).to_be_bytes());
        assert!(total_size(huge[..8].try_into().unwrap()).is_err());
    }

    /// Rename a property or node name in the strings/struct block without
    /// changing sizes, so the blob stays well formed.
    fn patched(from: &[u8], to: &[u8]) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let mut blob = QEMU_SMP4.to_vec();
        let at = blob
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern present");
        blob[at..at + from.len()].copy_from_slice(to);
        blob
    }

    #[test]
    fn missing_required_facts_are_errors_not_panics() {
        let blob = patched(b"timebase-frequency", b"timebase-frequencx");
        assert_eq!(
            parse(&open(&blob).unwrap()).err(),
            Some(DtError::NoTimebase)
        );
        let blob = patched(b"device_type\0", b"device_typo\0");
        assert_eq!(parse(&open(&blob).unwrap()).err(), Some(DtError::NoMemory));
        let blob = patched(b"cpus\0", b"cpuz\0");
        assert_eq!(parse(&open(&blob).unwrap()).err(), Some(DtError::NoCpus));
        let blob = patched(b"test=fault", b"test=\xfffault"[..10].try_into().unwrap());
        assert_eq!(
            parse(&open(&blob).unwrap()).err(),
            Some(DtError::BadProperty("/chosen/bootargs (not UTF-8)"))
        );
    }

    #[test]
    fn cells_decode_widths() {
        assert_eq!(cells(&[]), Some(0));
        assert_eq!(cells(&[0, 0, 1, 0]), Some(256));
        assert_eq!(cells(&[0, 0, 0, 1, 0, 0, 0, 2]), Some(0x1_0000_0002));
        assert_eq!(cells(&[0; 12]), None);
    }
}
