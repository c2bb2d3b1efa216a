"""The SIGSTRUCT of a signed enclave, read where `sgx_sign` puts it, and its signature checked.

`sgx_sign sign` writes the enclave's metadata (`metadata_t`) into the note section `.note.sgxmeta`
(note name `sgx_metadata`) of the enclave's ELF file. The metadata holds the SIGSTRUCT
(`enclave_css_t`) that EINIT checks. Layouts, from the Intel SGX SDK at tag sgx_2.26:
`common/inc/internal/metadata.h` (metadata_t, METADATA_MAGIC) and `common/inc/internal/arch.h`
(css_header_t, css_key_t, css_body_t, css_buffer_t); and from the Intel SDM, Vol. 3D, "SIGSTRUCT".

What is checked here, without SGX:
* the metadata magic (Intel's `sgx_sign dump` does not check it: it dumps an unsigned enclave's
  zeros), and the SIGSTRUCT's fixed HEADER and HEADER2;
* the RSA-3072 signature, exponent 3, over HEADER (bytes 0-127) and BODY (bytes 900-1027), in the
  PKCS#1 v1.5 form with SHA-256 that EINIT verifies; and Q1 and Q2, which EINIT uses to verify it;
* so that ENCLAVEHASH (MRENCLAVE), the modulus (MRSIGNER = SHA-256 of its 384 little-endian bytes),
  ISVPRODID, ISVSVN, ATTRIBUTES and ATTRIBUTEMASK are what the holder of that key signed.

Checked against Intel's own `sgx_sign dump` (built from linux-sgx sgx_2.26): it prints the same
fields from the same bytes (docs/attestation.md, "Checked against Intel's sgx_sign").

Not checked: that ENCLAVEHASH is the measurement of the pages in this file. That needs the
ECREATE/EADD/EEXTEND measurement `sgx_sign` computes from the ELF's layout; at run time EINIT
refuses an enclave whose pages do not measure to it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from dataclasses import dataclass

from occlum.attestation.elf_sections import ElfError, section_bytes, sections

METADATA_SECTION = ".note.sgxmeta"
METADATA_NOTE_NAME = b"sgx_metadata\0"
METADATA_MAGIC = 0x86A80294635D0E4C
CSS_OFFSET = 64  # metadata_t: magic, version, size, 5 x uint32, enclave_size, attributes, then enclave_css
CSS_SIZE = 1808
HEADER = bytes.fromhex("06000000e100000000000100")  # css_header_t.header, 12 bytes
HEADER2 = bytes.fromhex("01010000600000006000000001000000")
KEY_BYTES = 384
# DER DigestInfo prefix of a SHA-256 digest (RFC 8017, section 9.2, note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
ATTR_DEBUG = 0x2  # SGX_FLAGS_DEBUG, bit 1 of ATTRIBUTES.FLAGS


class SigstructError(Exception):
    """The file holds no SIGSTRUCT that a genuine signature covers; the message says which part failed."""


@dataclass(frozen=True)
class Sigstruct:
    mrenclave: str
    mrsigner: str
    isv_prod_id: int
    isv_svn: int
    attributes_flags: int
    attribute_mask_flags: int
    misc_select: int
    date: int  # yyyymmdd as hex digits, as sgx_sign writes it
    other_records: tuple[tuple[str, str], ...] = ()  # (version, MRENCLAVE) of further metadata records

    @property
    def debuggable(self) -> bool:
        """Whether EINIT lets the enclave start in debug mode. sgx_sign never sets DEBUG in ATTRIBUTES;
        DisableDebug=1 sets it in ATTRIBUTEMASK, which forces it to 0 (manage_metadata.cpp)."""
        return bool(self.attributes_flags & ATTR_DEBUG) or not self.attribute_mask_flags & ATTR_DEBUG


@dataclass(frozen=True)
class CssParts:
    """The parts of an enclave_css_t (1808 bytes), by the offsets of arch.h."""

    header: bytes  # 0..128: header, type, module_vendor, date, header2, hw_version, reserved
    modulus: bytes  # 128..512, little-endian
    exponent: int  # 512..516
    signature: bytes  # 516..900, little-endian
    body: bytes  # 900..1028: misc_select ... isv_prod_id, isv_svn
    q1: bytes  # 1040..1424 (after 12 reserved bytes)
    q2: bytes  # 1424..1808

    @classmethod
    def split(cls, css: bytes) -> CssParts:
        return cls(
            css[0:128],
            css[128:512],
            struct.unpack_from("<I", css, 512)[0],
            css[516:900],
            css[900:1028],
            css[1040:1424],
            css[1424:1808],
        )


def expected_encoded_message(signed: bytes) -> int:
    """EMSA-PKCS1-v1_5 (RFC 8017, 9.2) of SHA-256(signed), 384 bytes, as an integer."""
    t = SHA256_DIGEST_INFO + hashlib.sha256(signed).digest()
    return int.from_bytes(b"\x00\x01" + b"\xff" * (KEY_BYTES - len(t) - 3) + b"\x00" + t, "big")


def q1_q2(signature: int, modulus: int) -> tuple[int, int]:
    """Q1 = floor(S^2 / M), Q2 = floor((S^3 - Q1*S*M) / M): the SDM's SIGSTRUCT definitions."""
    q1 = signature * signature // modulus
    q2 = (signature**3 - q1 * signature * modulus) // modulus
    return q1, q2


def find_metadata(data: bytes) -> bytes:
    """The metadata_t bytes inside the `.note.sgxmeta` note of a signed enclave."""
    try:
        found = sections(data).get(METADATA_SECTION)
    except ElfError as e:
        raise SigstructError(f"it is not an enclave ELF file: {e}") from None
    if found is None:
        raise SigstructError(f"it has no {METADATA_SECTION} section, so `sgx_sign` never signed it")
    note = section_bytes(data, found)
    if len(note) < 12:
        raise SigstructError(f"its {METADATA_SECTION} section is too short for a note")
    namesz, descsz, _type = struct.unpack_from("<III", note, 0)
    # sgx_sign reads the metadata right after the name, unpadded (elfparser.cpp, get_meta_property):
    # 12 + 13 = 25 bytes into the section, not at the 4-aligned offset the ELF note format would give.
    desc_start = 12 + namesz
    if note[12:desc_start] != METADATA_NOTE_NAME or desc_start + descsz > len(note):
        raise SigstructError(f"its {METADATA_SECTION} section does not hold an `sgx_metadata` note")
    return note[desc_start : desc_start + descsz]


MAX_RECORDS = 8  # sgx_sign writes one, or two (an SGX2 record and a compatible SGX1 one)


def _record(meta: bytes, at: int) -> tuple[int, int, Sigstruct]:
    """The metadata record at `at`: its version, its size, and its SIGSTRUCT once checked."""
    if len(meta) < at + CSS_OFFSET + CSS_SIZE:
        raise SigstructError(f"its metadata record at {at} is too short to hold a SIGSTRUCT")
    magic, version, size = struct.unpack_from("<QQI", meta, at)
    if magic != METADATA_MAGIC:
        raise SigstructError(f"its metadata magic is {magic:#x}, not {METADATA_MAGIC:#x}: the enclave was never signed")
    return version, size, _checked(CssParts.split(meta[at + CSS_OFFSET : at + CSS_OFFSET + CSS_SIZE]))


def read_sigstruct(data: bytes) -> Sigstruct:
    """The SIGSTRUCT of the signed enclave `data`, once its magic, headers and signature are checked.
    A second metadata record (the chain `sgx_sign dump` walks, each record `size` bytes after the
    last; a loader may pick any of them) must verify too and be signed by the same key."""
    meta = find_metadata(data)
    version, size, first = _record(meta, 0)
    others: list[tuple[str, str]] = []
    at = 0
    while size and at + size + 24 <= len(meta) and len(others) < MAX_RECORDS:
        at += size
        magic, _, next_size = struct.unpack_from("<QQI", meta, at)
        if magic != METADATA_MAGIC or next_size == 0:
            break
        version, size, sig = _record(meta, at)
        if sig.mrsigner != first.mrsigner:
            raise SigstructError(f"its metadata record at {at} is signed by another key (MRSIGNER {sig.mrsigner})")
        others.append((f"{version >> 32}.{version & 0xFFFFFFFF}", sig.mrenclave))
    return dataclasses.replace(first, other_records=tuple(others))


def _checked(css: CssParts) -> Sigstruct:
    if css.header[:12] != HEADER or css.header[24:40] != HEADER2:
        raise SigstructError("its SIGSTRUCT HEADER or HEADER2 is not the fixed value the SDM requires")
    modulus = int.from_bytes(css.modulus, "little")
    signature = int.from_bytes(css.signature, "little")
    if css.exponent != 3 or modulus.bit_length() != 3072:
        raise SigstructError(
            f"its signing key is not RSA-3072 with exponent 3 (exponent {css.exponent}, "
            f"{modulus.bit_length()} bits), which is all EINIT accepts"
        )
    if not 0 < signature < modulus or pow(signature, 3, modulus) != expected_encoded_message(css.header + css.body):
        raise SigstructError("its SIGSTRUCT signature does not verify with the modulus it carries")
    q1, q2 = q1_q2(signature, modulus)
    if int.from_bytes(css.q1, "little") != q1 or int.from_bytes(css.q2, "little") != q2:
        raise SigstructError("its SIGSTRUCT Q1 or Q2 is not derived from its signature, so EINIT would refuse it")
    misc_select, _mask = struct.unpack_from("<II", css.body, 0)
    (flags,) = struct.unpack_from("<Q", css.body, 28)
    (mask_flags,) = struct.unpack_from("<Q", css.body, 44)
    enclave_hash = css.body[60:92]
    isv_prod_id, isv_svn = struct.unpack_from("<HH", css.body, 124)
    (date,) = struct.unpack_from("<I", css.header, 20)
    return Sigstruct(
        mrenclave=enclave_hash.hex(),
        mrsigner=hashlib.sha256(css.modulus).hexdigest(),
        isv_prod_id=isv_prod_id,
        isv_svn=isv_svn,
        attributes_flags=flags,
        attribute_mask_flags=mask_flags,
        misc_select=misc_select,
        date=date,
    )
