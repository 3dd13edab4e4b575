//! Minimal DWARF 4 for one piece of JIT code: a compile unit named
//! `<module>.wasm` with a subprogram per function, and a line table whose
//! "line numbers" are wasm byte offsets in the module, so gdb shows
//! `at calc.wasm:41` for the instruction at module offset 41.
//!
//! Sections produced: `.debug_abbrev`, `.debug_info`, `.debug_line`
//! (32-bit DWARF, 8-byte addresses, little-endian).
//!
//! The prologue has no row: gdb then finds the end of the prologue by
//! reading the code (frame pointer set up) and puts a breakpoint on a
//! function there. A row at the function's first byte would make gdb skip
//! to the second row instead, which may lie past a trapping instruction.
//!
//! Invariants:
//! - INV-DWARF-1: each function's rows form one sequence, starting at its
//!   first byte and ended (`DW_LNE_end_sequence`) at its last byte + 1, so
//!   rows never leak across functions.
//! - INV-DWARF-2: the unit lengths written are the byte counts that follow
//!   them; they are patched after the contents are complete.
//! - INV-DWARF-3: allocation failure yields [`OutOfMemory`], never an abort
//!   (every byte goes through [`Buf`]).

use super::buf::{Buf, OutOfMemory};
use crate::hal::JitCode;

const DW_TAG_COMPILE_UNIT: u8 = 0x11;
const DW_TAG_SUBPROGRAM: u8 = 0x2e;
const DW_AT_NAME: u8 = 0x03;
const DW_AT_STMT_LIST: u8 = 0x10;
const DW_AT_LOW_PC: u8 = 0x11;
const DW_AT_HIGH_PC: u8 = 0x12;
const DW_AT_LANGUAGE: u8 = 0x13;
const DW_AT_EXTERNAL: u8 = 0x3f;
const DW_FORM_ADDR: u8 = 0x01;
const DW_FORM_DATA2: u8 = 0x05;
const DW_FORM_DATA8: u8 = 0x07;
const DW_FORM_STRING: u8 = 0x08;
const DW_FORM_SEC_OFFSET: u8 = 0x17;
const DW_FORM_FLAG_PRESENT: u8 = 0x19;
/// No DWARF language code names wasm; C keeps gdb's expression parser
/// ordinary.
const DW_LANG_C89: u16 = 0x0001;

const DW_LNS_COPY: u8 = 1;
const DW_LNS_ADVANCE_PC: u8 = 2;
const DW_LNS_ADVANCE_LINE: u8 = 3;
const DW_LNE_END_SEQUENCE: u8 = 1;
const DW_LNE_SET_ADDRESS: u8 = 2;
const OPCODE_BASE: u8 = 13;
const STANDARD_OPCODE_LENGTHS: [u8; 12] = [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1];

/// The debug sections describing `code`: `.debug_abbrev`, `.debug_info`,
/// `.debug_line`, in that order.
pub const NAMES: [&str; 3] = [".debug_abbrev", ".debug_info", ".debug_line"];

/// Most bytes of one line-table row: `DW_LNS_advance_pc` with a 32-bit
/// offset, `DW_LNS_advance_line` with a 64-bit delta, `DW_LNS_copy`.
const ROW_BOUND: usize = 1 + 5 + 1 + 10 + 1;

/// Most bytes [`sections`] writes for `code` (for a budget check before
/// building).
pub fn size_bound(code: &JitCode<'_>) -> usize {
    let file = code.module.len() + ".wasm".len() + 1;
    let per_func: usize = code
        .symbols
        .iter()
        .map(|s| {
            // info: abbrev code, name, low_pc, high_pc; line: set_address,
            // the rows, the final advance and end_sequence.
            1 + s.name.len() + 1 + 16 + 11 + s.lines.len() * ROW_BOUND + 11 + 3
        })
        .sum();
    64 + 2 * file + 64 + per_func
}

/// The contents of [`NAMES`]' sections for `code`.
///
/// # Errors
/// [`OutOfMemory`] when the heap cannot hold them (INV-DWARF-3).
pub fn sections(code: &JitCode<'_>) -> Result<[alloc::vec::Vec<u8>; 3], OutOfMemory> {
    let file = [code.module, ".wasm"];

    let mut abbrev = Buf::new();
    abbrev.put(&[1, DW_TAG_COMPILE_UNIT, 1]);
    abbrev.put(&[DW_AT_NAME, DW_FORM_STRING]);
    abbrev.put(&[DW_AT_LANGUAGE, DW_FORM_DATA2]);
    abbrev.put(&[DW_AT_STMT_LIST, DW_FORM_SEC_OFFSET]);
    abbrev.put(&[DW_AT_LOW_PC, DW_FORM_ADDR]);
    abbrev.put(&[DW_AT_HIGH_PC, DW_FORM_DATA8]);
    abbrev.put(&[0, 0]);
    abbrev.put(&[2, DW_TAG_SUBPROGRAM, 0]);
    abbrev.put(&[DW_AT_NAME, DW_FORM_STRING]);
    abbrev.put(&[DW_AT_LOW_PC, DW_FORM_ADDR]);
    abbrev.put(&[DW_AT_HIGH_PC, DW_FORM_DATA8]);
    abbrev.put(&[DW_AT_EXTERNAL, DW_FORM_FLAG_PRESENT]);
    abbrev.put(&[0, 0]);
    abbrev.u8(0);

    let mut info = Buf::new();
    info.u32(0); // unit length, patched below
    info.u16(4); // version
    info.u32(0); // abbrev offset
    info.u8(8); // address size
    info.uleb(1);
    info.cstr_parts(&file);
    info.u16(DW_LANG_C89);
    info.u32(0); // stmt_list: offset 0
    info.u64(code.range.start as u64);
    info.u64(code.range.len as u64);
    for s in code.symbols {
        info.uleb(2);
        info.cstr(s.name);
        info.u64(s.start as u64);
        info.u64(s.len as u64);
    }
    info.u8(0); // end of the unit's children
    info.patch_len_u32(0);

    let mut line = Buf::new();
    line.u32(0); // unit length, patched below
    line.u16(4); // version
    let header_len_at = line.len();
    line.u32(0);
    line.u8(1); // minimum_instruction_length
    line.u8(1); // maximum_operations_per_instruction
    line.u8(1); // default_is_stmt
    line.u8((-5i8) as u8); // line_base
    line.u8(14); // line_range
    line.u8(OPCODE_BASE);
    line.put(&STANDARD_OPCODE_LENGTHS);
    line.u8(0); // no include directories
    line.cstr_parts(&file);
    line.put(&[0, 0, 0]); // directory, mtime, length
    line.u8(0); // end of file names
    line.patch_len_u32(header_len_at);
    for s in code.symbols {
        if s.lines.is_empty() {
            continue;
        }
        // INV-DWARF-1: one sequence per function.
        line.put(&[0, 9, DW_LNE_SET_ADDRESS]);
        line.u64(s.start as u64);
        let (mut pc, mut row) = (0u64, 1i64);
        for &(off, wasm) in s.lines {
            let off = u64::from(off);
            if off < pc || off >= s.len as u64 {
                continue;
            }
            if off > pc {
                line.u8(DW_LNS_ADVANCE_PC);
                line.uleb(off - pc);
                pc = off;
            }
            let wasm = i64::from(wasm);
            if wasm != row {
                line.u8(DW_LNS_ADVANCE_LINE);
                line.sleb(wasm - row);
                row = wasm;
            }
            line.u8(DW_LNS_COPY);
        }
        let end = s.len as u64;
        if end > pc {
            line.u8(DW_LNS_ADVANCE_PC);
            line.uleb(end - pc);
        }
        line.put(&[0, 1, DW_LNE_END_SEQUENCE]);
    }
    line.patch_len_u32(0);

    Ok([abbrev.finish()?, info.finish()?, line.finish()?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hal::{JitSymbol, VirtRange};

    #[test]
    fn unit_lengths_cover_their_sections() {
        let syms = [JitSymbol {
            name: "m!f",
            start: 0x1000,
            len: 32,
            lines: &[(0, 40), (8, 42), (8, 43), (40, 50)],
        }];
        let code = JitCode {
            range: VirtRange {
                start: 0x1000,
                len: 4096,
            },
            module: "m",
            symbols: &syms,
        };
        let sections = sections(&code).expect("built");
        let total: usize = sections.iter().map(|s| s.len()).sum();
        assert!(total <= size_bound(&code), "{total}");
        for (name, s) in NAMES.iter().zip(&sections) {
            if *name == ".debug_abbrev" {
                assert_eq!(s.last(), Some(&0));
                continue;
            }
            let len = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize;
            assert_eq!(len + 4, s.len(), "{name}");
        }
    }
}
