"""The SIGSTRUCT read where sgx_sign writes it, its signature checked; an unsigned or edited one refused.

The enclaves are signed by the test double's sgx_sign, whose output Intel's own `sgx_sign dump`
(sgx_2.26) reads byte for byte as the double does (docs/attestation.md)."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from occlum.attestation.sigstruct import SigstructError, read_sigstruct
from occlum_double.double_elf import make_libos, metadata_offset

DOUBLE = Path(__file__).resolve().parents[3] / "tests" / "occlum_double"
XML = (
    "<EnclaveConfiguration><ProdID>{prod}</ProdID><ISVSVN>{svn}</ISVSVN><DisableDebug>{nodebug}</DisableDebug>"
    "<HeapMaxSize>4096</HeapMaxSize></EnclaveConfiguration>"
)


def _modulus_le(pem: Path) -> bytes:
    text = subprocess.run(["openssl", "rsa", "-in", str(pem), "-noout", "-modulus"], capture_output=True, text=True)
    return int(text.stdout.strip().split("=", 1)[1], 16).to_bytes(384, "little")


def sign(tmp_path: Path, prod: int = 7, svn: int = 3, debuggable: bool = False, key: Path | None = None) -> bytes:
    unsigned = tmp_path / "libos.so"
    unsigned.write_bytes(make_libos(b"release 0.31.0"))
    xml = tmp_path / "Enclave.xml"
    xml.write_text(XML.format(prod=prod, svn=svn, nodebug=0 if debuggable else 1))
    out = tmp_path / "signed.so"
    subprocess.run(
        [sys.executable, str(DOUBLE / "sgx_sign"), "sign", "-key", str(key or DOUBLE / "template_Enclave.pem")]
        + ["-config", str(xml), "-enclave", str(unsigned), "-out", str(out)],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


@pytest.mark.parametrize("prod, svn, debuggable", [(7, 3, False), (0, 65535, True)])
def test_the_signed_fields_are_read(tmp_path: Path, prod: int, svn: int, debuggable: bool) -> None:
    sig = read_sigstruct(sign(tmp_path, prod, svn, debuggable))
    assert (sig.isv_prod_id, sig.isv_svn, sig.debuggable) == (prod, svn, debuggable)
    assert sig.mrsigner == hashlib.sha256(_modulus_le(DOUBLE / "template_Enclave.pem")).hexdigest()
    assert len(sig.mrenclave) == 64 and sig.attributes_flags == 0x4


def _at(data: bytes, offset_in_css: int) -> int:
    return metadata_offset(data) + 64 + offset_in_css


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


@pytest.mark.parametrize(
    "where, words",
    [
        (960, "signature does not verify"),  # ENCLAVEHASH
        (1024, "signature does not verify"),  # ISVPRODID
        (944, "signature does not verify"),  # ATTRIBUTEMASK: the debug policy
        (20, "signature does not verify"),  # the date in HEADER
        (600, "signature does not verify"),  # the signature itself
        (200, "signature does not verify"),  # the modulus: another key
        (1100, "Q1 or Q2 is not derived from its signature"),
        (0, "HEADER or HEADER2 is not the fixed value"),
        (512, "not RSA-3072 with exponent 3"),
    ],
)
def test_an_edited_sigstruct_is_refused(tmp_path: Path, where: int, words: str) -> None:
    with pytest.raises(SigstructError, match=words):
        read_sigstruct(_flip(sign(tmp_path), _at(sign(tmp_path), where)))


def test_an_unsigned_enclave_is_refused_by_its_magic() -> None:
    # Intel's `sgx_sign dump` prints an unsigned enclave's zeros and exits 0; the magic tells.
    with pytest.raises(SigstructError, match="metadata magic is 0x0, not 0x86a80294635d0e4c"):
        read_sigstruct(make_libos(b"unsigned"))


@pytest.mark.parametrize(
    "data, words",
    [
        (b"MZ not an elf" + bytes(64), "does not start with the ELF magic"),
        (b"\x7fELF", "shorter than an ELF header"),
        (b"\x7fELF" + bytes(60), "not a 64-bit little-endian ELF file"),
        (b"\x7fELF\x02\x01" + bytes(58), "section header table is malformed"),
    ],
)
def test_not_an_enclave(data: bytes, words: str) -> None:
    with pytest.raises(SigstructError, match=words):
        read_sigstruct(data)


def test_a_note_with_another_name_is_refused(tmp_path: Path) -> None:
    signed = sign(tmp_path)
    at = metadata_offset(signed) - 13  # the note's name, "sgx_metadata\0"
    with pytest.raises(SigstructError, match="does not hold an `sgx_metadata` note"):
        read_sigstruct(signed[:at] + b"xgx" + signed[at + 3 :])


def test_section_headers_pointing_outside_the_file_are_refused(tmp_path: Path) -> None:
    signed = bytearray(sign(tmp_path))
    (shoff,) = struct.unpack_from("<Q", signed, 0x28)
    struct.pack_into("<Q", signed, 0x28, shoff + 10**9)
    with pytest.raises(SigstructError, match="lies outside the file"):
        read_sigstruct(bytes(signed))


def _with_second_record(first: bytes, second: bytes) -> bytes:
    """`first` with the metadata record of `second` chained after its own, as sgx_sign chains an
    SGX1-compatible record (each record `size` bytes after the one before)."""
    at, other = metadata_offset(first), metadata_offset(second)
    (size,) = struct.unpack_from("<I", first, at + 16)
    record = second[other : other + size]
    return first[: at + size] + record + first[at + size + len(record) :]


def test_a_second_record_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    from signing_key import make_signing_key

    key = make_signing_key(tmp_path / "other.pem")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    other = sign(tmp_path / "b", key=key)
    with pytest.raises(SigstructError, match="is signed by another key"):
        read_sigstruct(_with_second_record(sign(tmp_path / "a"), other))


def test_a_second_record_of_the_same_signer_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = sign(tmp_path / "a"), sign(tmp_path / "b", prod=8)
    sig = read_sigstruct(_with_second_record(first, second))
    assert sig.isv_prod_id == 7 and [v for v, _ in sig.other_records] == ["3.3"]
