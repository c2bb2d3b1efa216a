"""Occlum's integrity-only protected files: the tag, the node tree, and every kind of tampering.

Files are written by the test double's writer (tests/occlum_double/double_sefs.py), a second
implementation from the same reading of Occlum's SDK, so reader and writer check each other.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re

import pytest

from occlum.attestation.protected_file import (
    NODE,
    ProtectedFileError,
    gmac_zero_key,
    mac_text,
    parse_mac_text,
    read_protected,
)
from occlum_double.double_sefs import gmac as double_gmac
from occlum_double.double_sefs import protected_file


@pytest.mark.parametrize(
    "aad, tag",
    [
        (b"", "58e2fccefa7e3061367f1d57a4e7455a"),  # GCM's test case 1 (McGrew & Viega)
        # AES-128-GCM, zero key and IV, no plaintext, computed with pyca/cryptography's AESGCM:
        (b"occlum", "ae2dbd904e209d6b345eee600b438dbf"),
        (bytes(range(256)) * 16, "16574b1b5e98961bba6a252c8ae3ca46"),
    ],
)
def test_the_tag_is_aes_gcm_with_the_zero_key(aad: bytes, tag: str) -> None:
    assert gmac_zero_key(aad).hex() == tag
    assert double_gmac(aad).hex() == tag


# Sizes around the node tree's edges: in node 0 only; one data node; the last data node of MHT 0 and
# the first of MHT 1; past MHT 32, whose parent is MHT 1 (not the root).
SIZES = [0, 1, 3072, 3073, 3072 + 96 * NODE, 3072 + 96 * NODE + 1, 3072 + 33 * 96 * NODE + 5]


@pytest.mark.parametrize("size", SIZES)
def test_what_is_written_reads_back(size: int) -> None:
    data = os.urandom(size)
    blob, mac = protected_file(data, "f.bin")
    read = read_protected(io.BytesIO(blob), keep_up_to=size)
    assert (read.mac, read.integrity_only, read.name, read.size, read.data) == (mac, True, "f.bin", size, data)
    assert read.sha256 == hashlib.sha256(data).hexdigest()


BIG = 3072 + 97 * NODE  # two MHT nodes


def _tampered(change) -> bytes:
    content = random.Random(21).randbytes(BIG) if hasattr(random.Random, "randbytes") else os.urandom(BIG)
    blob = bytearray(protected_file(content, "f.bin")[0])
    change(blob)
    return bytes(blob)


def _flip(at: int):
    def change(blob: bytearray) -> None:
        blob[at] ^= 1

    return change


@pytest.mark.parametrize(
    "change, words",
    [
        (_flip(95 + 320), "the MAC of its metadata node is wrong"),  # first data byte, in node 0
        (_flip(95), "the MAC of its metadata node is wrong"),  # the stored name
        (_flip(2 * NODE + 7), "the MAC of its data node 0 (node 2) is wrong"),
        (_flip(NODE + 40), "the MAC of its MHT node 0 (node 1) is wrong"),
        (_flip(98 * NODE + 3), "the MAC of its MHT node 1 (node 98) is wrong"),
        (_flip(99 * NODE), "the MAC of its data node 96 (node 99) is wrong"),
        (_flip(93), "its update flag is set"),
        (_flip(0), "it is not an SGX protected file"),
        (lambda b: b.__delitem__(slice(len(b) - NODE, None)), "it ends before node"),
        (lambda b: b.__delitem__(slice(len(b) - 10, None)), "it ends inside a node"),
        (lambda b: b.extend(bytes(NODE)), "it has nodes past the"),
        # Two data nodes swapped: each is a well-formed node, but not where its tag is.
        (
            lambda b: b.__setitem__(slice(2 * NODE, 4 * NODE), b[3 * NODE : 4 * NODE] + b[2 * NODE : 3 * NODE]),
            "the MAC of its data node 0",
        ),
    ],
)
def test_tampering_is_found(change, words: str) -> None:
    with pytest.raises(ProtectedFileError, match=re.escape(words)):
        read_protected(io.BytesIO(_tampered(change)))


def test_the_plain_part_is_not_covered_and_the_reader_knows() -> None:
    """Node 0's plain part (key id, svn, attribute mask) is outside the tag, as in the SDK; the MAC
    then still names the same content."""
    blob = _tampered(_flip(20))  # inside the key id
    assert read_protected(io.BytesIO(blob)).integrity_only


def test_an_encrypted_file_is_said_to_be_unchecked() -> None:
    blob, _ = protected_file(b"secret", "f.bin", integrity_only=False)
    read = read_protected(io.BytesIO(blob))
    assert not read.integrity_only and read.data is None and read.sha256 == ""


def test_a_non_zero_node_key_is_refused() -> None:
    blob = bytearray(protected_file(bytes(BIG), "f.bin")[0])
    blob[NODE] ^= 1  # the key of data node 0's entry in MHT 0: its tag no longer matches anyway
    with pytest.raises(ProtectedFileError):
        read_protected(io.BytesIO(bytes(blob)))


def test_mac_text_round_trip() -> None:
    mac = bytes(range(16))
    assert mac_text(mac) == "00-01-02-03-04-05-06-07-08-09-0a-0b-0c-0d-0e-0f"
    assert parse_mac_text(mac_text(mac)) == mac
    for bad in ("", "00", "0-1", "zz-" * 15 + "zz", "000-" * 15 + "00"):
        assert parse_mac_text(bad) is None
