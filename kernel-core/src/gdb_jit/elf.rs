//! A minimal ELF64 relocatable object describing one piece of JIT code, for
//! gdb's JIT interface ([`super`]).
//!
//! Layout: the ELF header, then the section contents, then the section
//! header table. Sections: null, `.text` (`SHT_NOBITS`: the bytes live in
//! the kernel, at the section's address), `.symtab`, `.strtab`,
//! `.shstrtab`, and each of the debug sections given (`dwarf`) as
//! `SHT_PROGBITS`. The machine and flags are the target's: `EM_X86_64`,
//! `EM_AARCH64`, or `EM_RISCV` with the RVC and double-float ABI flags of
//! the kernel image itself (gdb compares them with the image's).
//!
//! Invariants:
//! - INV-ELF-1: `.text`'s `sh_addr` is the code's absolute address and every
//!   function symbol's `st_value` is its offset from that address (the
//!   object is `ET_REL`: gdb places each section at its `sh_addr`).
//! - INV-ELF-2: every offset and size written is that of bytes written
//!   here; the header is written last, once they are all known.
//! - INV-ELF-3: allocation failure yields [`OutOfMemory`], never an abort
//!   (every byte goes through [`Buf`]).

use alloc::vec::Vec;

use super::buf::{Buf, OutOfMemory};

/// One function symbol: name, offset from the text start, length.
pub struct Symbol<'a> {
    /// Its name.
    pub name: &'a str,
    /// Offset from the start of `.text`.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

/// Size of the ELF header.
pub const EHDR_SIZE: usize = 64;
/// Size of one section header.
pub const SHDR_SIZE: usize = 64;
/// Size of one symbol.
pub const SYM_SIZE: usize = 24;

const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_NOBITS: u32 = 8;
const SHF_ALLOC: u64 = 2;
const SHF_EXECINSTR: u64 = 4;
const STB_GLOBAL: u8 = 1;
const STT_FUNC: u8 = 2;
const STT_SECTION: u8 = 3;
const TEXT_INDEX: u16 = 1;

/// `EM_RISCV`.
pub const EM_RISCV: u16 = 243;
/// `EF_RISCV_RVC | EF_RISCV_FLOAT_ABI_DOUBLE`: compressed instructions and
/// the lp64d ABI, as `riscv64gc` builds (and the kernel image) have.
pub const EF_RISCV_GC_LP64D: u32 = 0x1 | 0x4;

/// The ELF machine of the target.
pub const MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    62 // EM_X86_64
} else if cfg!(target_arch = "aarch64") {
    183 // EM_AARCH64
} else if cfg!(target_arch = "riscv64") {
    EM_RISCV
} else {
    0 // EM_NONE: gdb will not know the code, but nothing breaks
};

/// The ELF header flags of the target.
pub const FLAGS: u32 = if cfg!(target_arch = "riscv64") {
    EF_RISCV_GC_LP64D
} else {
    0
};

/// A section header to write.
struct Shdr {
    name: u32,
    kind: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

impl Shdr {
    /// A section with no address, link, info or entries.
    fn plain(name: u32, kind: u32, offset: usize, size: usize) -> Self {
        Self {
            name,
            kind,
            flags: 0,
            addr: 0,
            offset: offset as u64,
            size: size as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        }
    }

    fn write(&self, out: &mut Buf) {
        out.u32(self.name);
        out.u32(self.kind);
        out.u64(self.flags);
        out.u64(self.addr);
        out.u64(self.offset);
        out.u64(self.size);
        out.u32(self.link);
        out.u32(self.info);
        out.u64(self.align);
        out.u64(self.entsize);
    }
}

/// A string table under construction.
struct StrTab(Buf);

impl StrTab {
    fn new() -> Self {
        let mut b = Buf::new();
        b.u8(0);
        Self(b)
    }

    fn add(&mut self, s: &str) -> u32 {
        let at = self.0.len() as u32;
        self.0.cstr(s);
        at
    }
}

/// Most bytes [`build`] writes for `count` symbols whose names total
/// `names` bytes (without their NULs) and `debug_count` debug sections
/// totalling `debug_len` bytes (for a budget check before building).
pub fn size_bound(count: usize, names: usize, debug_count: usize, debug_len: usize) -> usize {
    let sections = 5 + debug_count;
    EHDR_SIZE
        + 8
        + (2 + count) * SYM_SIZE
        + 1
        + names
        + count
        + debug_len
        + 64 // .shstrtab: the fixed names
        + 8
        + sections * SHDR_SIZE
}

/// Build the object for code at `text_addr`, `text_size` bytes long, with
/// `symbols` and extra `(name, contents)` debug sections.
///
/// # Errors
/// [`OutOfMemory`] when the heap cannot hold it (INV-ELF-3).
pub fn build(
    text_addr: u64,
    text_size: u64,
    symbols: &[Symbol<'_>],
    debug: &[(&str, &[u8])],
) -> Result<Vec<u8>, OutOfMemory> {
    let mut shstr = StrTab::new();
    let mut strtab = StrTab::new();
    // Symbols: null, the section symbol of .text, then the functions.
    let mut symtab = Buf::new();
    symtab.zeros(SYM_SIZE);
    symtab.u32(0);
    symtab.u8(STT_SECTION); // local
    symtab.u8(0);
    symtab.u16(TEXT_INDEX);
    symtab.u64(0);
    symtab.u64(0);
    let first_global = 2u32;
    for s in symbols {
        symtab.u32(strtab.add(s.name));
        symtab.u8((STB_GLOBAL << 4) | STT_FUNC);
        symtab.u8(0);
        symtab.u16(TEXT_INDEX);
        symtab.u64(s.offset);
        symtab.u64(s.size);
    }

    let mut out = Buf::new();
    out.zeros(EHDR_SIZE);
    let mut shdrs: Vec<Shdr> = Vec::new();
    shdrs
        .try_reserve_exact(5 + debug.len())
        .map_err(|_| OutOfMemory)?;
    shdrs.push(Shdr::plain(0, 0, 0, 0));
    shdrs.push(Shdr {
        name: shstr.add(".text"),
        kind: SHT_NOBITS,
        flags: SHF_ALLOC | SHF_EXECINSTR,
        addr: text_addr,
        offset: EHDR_SIZE as u64,
        size: text_size,
        link: 0,
        info: 0,
        align: 16,
        entsize: 0,
    });
    out.align(8);
    let symtab_index = shdrs.len() as u32;
    shdrs.push(Shdr {
        link: symtab_index + 1, // .strtab follows
        info: first_global,
        align: 8,
        entsize: SYM_SIZE as u64,
        ..Shdr::plain(shstr.add(".symtab"), SHT_SYMTAB, out.len(), symtab.len())
    });
    out.put(symtab.finish()?.as_slice());
    let strtab = strtab.0.finish()?;
    shdrs.push(Shdr::plain(
        shstr.add(".strtab"),
        SHT_STRTAB,
        out.len(),
        strtab.len(),
    ));
    out.put(&strtab);
    for (name, contents) in debug {
        shdrs.push(Shdr::plain(
            shstr.add(name),
            SHT_PROGBITS,
            out.len(),
            contents.len(),
        ));
        out.put(contents);
    }
    let shstrndx = shdrs.len() as u16;
    let shstr_name = shstr.add(".shstrtab");
    let shstr = shstr.0.finish()?;
    shdrs.push(Shdr::plain(shstr_name, SHT_STRTAB, out.len(), shstr.len()));
    out.put(&shstr);
    out.align(8);
    let shoff = out.len() as u64;
    for h in &shdrs {
        h.write(&mut out);
    }

    // The header, now that every offset is known (INV-ELF-2).
    let mut eh = Buf::new();
    eh.put(b"\x7fELF");
    eh.u8(2); // ELFCLASS64
    eh.u8(1); // ELFDATA2LSB
    eh.u8(1); // EV_CURRENT
    eh.u8(0); // ELFOSABI_NONE
    eh.zeros(8);
    eh.u16(1); // ET_REL
    eh.u16(MACHINE);
    eh.u32(1); // EV_CURRENT
    eh.u64(0); // e_entry
    eh.u64(0); // e_phoff
    eh.u64(shoff);
    eh.u32(FLAGS);
    eh.u16(EHDR_SIZE as u16);
    eh.u16(0); // e_phentsize
    eh.u16(0); // e_phnum
    eh.u16(SHDR_SIZE as u16);
    eh.u16(shdrs.len() as u16);
    eh.u16(shstrndx);
    out.patch(0, &eh.finish()?);
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    }

    #[test]
    fn header_and_section_table_are_consistent() {
        let syms = [
            Symbol {
                name: "m!a",
                offset: 0,
                size: 16,
            },
            Symbol {
                name: "m!b",
                offset: 16,
                size: 32,
            },
        ];
        let debug: [(&str, &[u8]); 1] = [(".debug_line", &[1, 2, 3])];
        let elf = build(0x7000_0000, 4096, &syms, &debug).expect("built");
        assert!(elf.len() <= size_bound(2, 6, 1, 3));
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(u16_at(&elf, 0x12), MACHINE);
        assert_eq!(u32_at(&elf, 0x30), FLAGS);
        let shoff = u64_at(&elf, 0x28) as usize;
        let shnum = u16_at(&elf, 0x3c) as usize;
        assert_eq!(shnum, 6);
        assert_eq!(elf.len(), shoff + shnum * SHDR_SIZE);
        // .text: NOBITS at the code's address.
        let text = shoff + SHDR_SIZE;
        assert_eq!(u64_at(&elf, text + 0x10), 0x7000_0000);
        assert_eq!(u64_at(&elf, text + 0x20), 4096);
        // .symtab: null, section, two functions.
        let symtab = shoff + 2 * SHDR_SIZE;
        assert_eq!(u64_at(&elf, symtab + 0x20), 4 * SYM_SIZE as u64);
        let strtab_off = u64_at(&elf, shoff + 3 * SHDR_SIZE + 0x18) as usize;
        assert_eq!(&elf[strtab_off..strtab_off + 9], b"\0m!a\0m!b\0");
        // The debug section's bytes are where its header says.
        let line = shoff + 4 * SHDR_SIZE;
        let at = u64_at(&elf, line + 0x18) as usize;
        assert_eq!(&elf[at..at + 3], &[1, 2, 3]);
    }

    #[test]
    fn machine_and_flags_are_the_targets() {
        // riscv64gc objects carry RVC (1) | float ABI double (4), as the
        // kernel image does; other targets no flags.
        assert_eq!(EF_RISCV_GC_LP64D, 5);
        let want = if cfg!(target_arch = "x86_64") {
            (62, 0)
        } else if cfg!(target_arch = "aarch64") {
            (183, 0)
        } else if cfg!(target_arch = "riscv64") {
            (EM_RISCV, EF_RISCV_GC_LP64D)
        } else {
            (0, 0)
        };
        assert_eq!((MACHINE, FLAGS), want);
    }
}
