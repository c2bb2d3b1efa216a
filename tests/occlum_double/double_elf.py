"""ELF files for the Occlum test double (tests only; see README.md): the LibOS stand-in that
`make_install.py` installs, and the section edits that `occlum build` (objcopy --update-section
.builtin_config) and `sgx_sign sign` (filling .note.sgxmeta) make to it. Stdlib only.

The stand-in is a real ELF64 x86-64 shared object, small, with the sections a verifier reads where
the real LibOS has them. Intel's `sgx_sign dump` (linux-sgx sgx_2.26) accepts it: its ELF parser
(psw/urts/parser/elfparser.cpp, run_parser) needs ET_DYN, EM_X86_64, a PT_DYNAMIC whose DT_SYMTAB
is the address of a section with a non-zero entsize, loadable segments aligned to pages, and a
`.note.sgxmeta` note named `sgx_metadata` whose section size is the 4-aligned 12 + 13 + 0x6000
(the SDK's trts reserves it; the note name is not padded: the metadata starts 25 bytes in).
"""

import struct

METADATA_SIZE = 0x6000
NOTE_NAME = b"sgx_metadata\0"
BUILTIN_CONFIG_SIZE = 47  # src/libos/src/config.rs: `static OCCLUM_JSON_MAC: [u8; 47]`, "xx-xx-...-xx"

SHT_NULL, SHT_PROGBITS, SHT_STRTAB, SHT_DYNAMIC, SHT_NOTE, SHT_DYNSYM = 0, 1, 3, 6, 7, 11
SHF_WRITE, SHF_ALLOC = 1, 2
PT_LOAD, PT_DYNAMIC = 1, 2
PF_W, PF_R = 2, 4
DT_NULL, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT = 0, 5, 6, 10, 11


def _align(x, a):
    return (x + a - 1) & ~(a - 1)


def make_libos(payload):
    """A LibOS stand-in: `payload` in .rodata, an empty .builtin_config and an unsigned .note.sgxmeta."""
    off = _align(64 + 56 * 2, 8)
    layout = []  # (name, type, flags, addr-is-offset, bytes, link, info, align, entsize)
    dynsym_off = off
    dynsym = bytes(24)  # the null symbol only
    off += len(dynsym)
    dynstr_off = off
    dynstr = b"\0"
    off = _align(off + len(dynstr), 8)
    dynamic_off = off
    dynamic = b"".join(
        struct.pack("<qQ", t, v)
        for t, v in ((DT_SYMTAB, dynsym_off), (DT_STRTAB, dynstr_off), (DT_STRSZ, 1), (DT_SYMENT, 24), (DT_NULL, 0))
    )
    off += len(dynamic)
    rodata_off = off
    off += len(payload)
    config_off = _align(off, 8)
    off = config_off + BUILTIN_CONFIG_SIZE
    alloc_end = off
    note_off = _align(off, 4)
    note = struct.pack("<III", len(NOTE_NAME), METADATA_SIZE, 1) + NOTE_NAME + bytes(METADATA_SIZE)
    note += bytes(_align(len(note), 4) - len(note))
    off = note_off + len(note)
    layout = [
        (b".dynsym", SHT_DYNSYM, SHF_ALLOC, dynsym_off, dynsym, 2, 1, 8, 24),
        (b".dynstr", SHT_STRTAB, SHF_ALLOC, dynstr_off, dynstr, 0, 0, 1, 0),
        (b".dynamic", SHT_DYNAMIC, SHF_ALLOC | SHF_WRITE, dynamic_off, dynamic, 2, 0, 8, 16),
        (b".rodata", SHT_PROGBITS, SHF_ALLOC, rodata_off, payload, 0, 0, 1, 0),
        (b".builtin_config", SHT_PROGBITS, SHF_ALLOC, config_off, bytes(BUILTIN_CONFIG_SIZE), 0, 0, 8, 0),
        (b".note.sgxmeta", SHT_NOTE, 0, None, note, 0, 0, 4, 0),
    ]
    shstrtab, name_off = b"\0", {}
    for name, *_ in layout + [(b".shstrtab",)]:
        name_off[name] = len(shstrtab)
        shstrtab += name + b"\0"
    shstrtab_off = off
    off += len(shstrtab)
    shoff = _align(off, 8)
    img = bytearray(shoff + 64 * (len(layout) + 2))
    for _name, _type, _flags, at, data, *_ in layout:
        start = note_off if at is None else at
        img[start : start + len(data)] = data
    img[shstrtab_off : shstrtab_off + len(shstrtab)] = shstrtab
    phdrs = struct.pack("<IIQQQQQQ", PT_LOAD, PF_R | PF_W, 0, 0, 0, alloc_end, alloc_end, 0x1000)
    phdrs += struct.pack(
        "<IIQQQQQQ", PT_DYNAMIC, PF_R | PF_W, dynamic_off, dynamic_off, dynamic_off, len(dynamic), len(dynamic), 8
    )
    e_ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    img[0:64] = e_ident + struct.pack(
        "<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, shoff, 0, 64, 56, 2, 64, len(layout) + 2, len(layout) + 1
    )
    img[64 : 64 + len(phdrs)] = phdrs
    headers = [struct.pack("<IIQQQQIIQQ", 0, SHT_NULL, 0, 0, 0, 0, 0, 0, 0, 0)]
    for name, kind, flags, at, data, link, info, align, entsize in layout:
        start = note_off if at is None else at
        addr = 0 if at is None else at
        headers.append(
            struct.pack("<IIQQQQIIQQ", name_off[name], kind, flags, addr, start, len(data), link, info, align, entsize)
        )
    headers.append(
        struct.pack("<IIQQQQIIQQ", name_off[b".shstrtab"], SHT_STRTAB, 0, 0, shstrtab_off, len(shstrtab), 0, 0, 1, 0)
    )
    img[shoff:] = b"".join(headers)
    return bytes(img)


def find_section(data, wanted):
    """(offset, size) of the section named `wanted`, or None."""
    if data[:4] != b"\x7fELF":
        return None
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + 64 * i) for i in range(shnum)]
    str_off = headers[shstrndx][4]
    for name, _kind, _flags, _addr, offset, size in headers:
        end = data.index(b"\0", str_off + name)
        if data[str_off + name : end] == wanted.encode():
            return offset, size
    return None


def update_section(data, name, content):
    """`objcopy --update-section`, for a section whose size stays: the content, padded with NULs."""
    offset, size = find_section(data, name)
    if len(content) > size:
        raise ValueError("%d bytes do not fit in %s (%d bytes)" % (len(content), name, size))
    return data[:offset] + content + bytes(size - len(content)) + data[offset + size :]


def metadata_offset(data):
    """Where sgx_sign reads and writes metadata_t: the section's offset + 12 + namesz."""
    found = find_section(data, ".note.sgxmeta")
    if found is None:
        return None
    (namesz,) = struct.unpack_from("<I", data, found[0])
    return found[0] + 12 + namesz
