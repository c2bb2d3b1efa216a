"""The named sections of an ELF64 little-endian file (a signed enclave), read with bounds checks.

Only what the verifier needs: the section header table and its string table, so that
`.note.sgxmeta` (where `sgx_sign` writes the enclave's metadata and SIGSTRUCT) and `.builtin_config`
(where `occlum build` writes the MAC of the enclave's protected config) can be found. Every offset
and size is checked against the file before it is used; a hostile file is an ElfError, not a crash.
Layout: the System V gABI, "ELF Header" and "Sections" (Elf64_Ehdr, Elf64_Shdr).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ELF_MAGIC = b"\x7fELF"
ELFCLASS64, ELFDATA2LSB = 2, 1
SHT_NOBITS = 8
MAX_SECTIONS = 4096


class ElfError(Exception):
    """The file is not an ELF64 little-endian file whose sections can be read; the message says why."""


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    offset: int
    size: int


def _unpack(fmt: str, data: bytes, offset: int, what: str) -> tuple[int, ...]:
    if offset < 0 or offset + struct.calcsize(fmt) > len(data):
        raise ElfError(f"its {what} lies outside the file ({len(data)} bytes)")
    return struct.unpack_from(fmt, data, offset)


def sections(data: bytes) -> dict[str, Section]:
    """Each section by name (the first of a repeated name)."""
    if len(data) < 64:
        raise ElfError(f"it is {len(data)} bytes, shorter than an ELF header")
    if data[:4] != ELF_MAGIC:
        raise ElfError(f"it does not start with the ELF magic (starts with {data[:4]!r})")
    if data[4] != ELFCLASS64 or data[5] != ELFDATA2LSB:
        raise ElfError("it is not a 64-bit little-endian ELF file, as an x86-64 enclave is")
    (shoff,) = _unpack("<Q", data, 0x28, "section header offset")
    shentsize, shnum, shstrndx = _unpack("<HHH", data, 0x3A, "ELF header")
    if shentsize != 64 or not 0 < shnum <= MAX_SECTIONS or shstrndx >= shnum:
        raise ElfError(f"its section header table is malformed (entsize {shentsize}, {shnum} sections)")
    raw = []
    for i in range(shnum):
        name_at, kind, _flags, _addr, offset, size = _unpack("<IIQQQQ", data, shoff + 64 * i, f"section header {i}")
        if kind != SHT_NOBITS and offset + size > len(data):
            raise ElfError(f"section {i} lies outside the file")
        raw.append((name_at, kind, offset, size))
    _, _, str_off, str_size = raw[shstrndx]
    strtab = data[str_off : str_off + str_size]
    out: dict[str, Section] = {}
    for name_off, kind, offset, size in raw:
        end = strtab.find(b"\0", name_off)
        if name_off >= len(strtab) or end < 0:
            raise ElfError("a section name lies outside the section name table")
        name = strtab[name_off:end].decode("ascii", "replace")
        out.setdefault(name, Section(name, kind, offset, size))
    return out


def section_bytes(data: bytes, section: Section) -> bytes:
    return b"" if section.type == SHT_NOBITS else data[section.offset : section.offset + section.size]
