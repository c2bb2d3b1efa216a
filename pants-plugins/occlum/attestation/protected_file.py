"""Occlum's integrity-only protected files, read and MAC-checked as the LibOS checks them.

`occlum-protect-integrity` (for `.Occlum_sys.json.protected`) and `sefs-cli zip` (for every file of
an image without a key) write SGX protected files in the integrity-only mode that Occlum adds to the
SGX SDK's protected FS (occlum/linux-sgx, branch sgx_2.20_for_occlum, `sdk/protected_fs/
sgx_tprotected_fs`; Occlum 0.31.0 builds with its 2.21 branch, whose protected FS is the same):

* the file is 4096-byte nodes: node 0 the metadata node, then MHT nodes and data nodes;
* node 0 is a 95-byte plain part (`file_id` "SGX_FILE", version 1, `use_user_kdk_key` 1,
  `meta_data_gmac` at 77..93, `update_flag`, and Occlum's `integrity_only` byte at 94) and a
  3392-byte part that an encrypted file would encrypt: the file's name (260 bytes), size, two unused
  counters, `mht_key`, `mht_gmac` and the first 3072 bytes of data (protected_fs_nodes.h);
* every node is stored as plaintext and authenticated by AES-128-GCM with a zero key and a zero IV,
  an empty plaintext and the node as additional data (file_flush.cpp). With a fixed key the tag is
  GHASH under the fixed H = AES_0(0^128) xor AES_0(J0): no AES is needed to check it;
* data node d (bytes 3072 + 4096*d of the file) is node d + 2 + d // 96, and its tag is entry d % 96 of
  MHT node d // 96; MHT node m >= 1 is node 1 + 97*m, its tag entry (m - 1) % 32 of the child part of
  MHT node (m - 1) // 32; the root MHT (node 1) is tagged by `mht_gmac` (file_read_write.cpp);
* the file's MAC, what `show-mac` prints and SEFS records, is `meta_data_gmac`, the tag of node 0's
  second part; through `mht_gmac` it covers every node. Node 0's plain part is not covered.

The file is read as a stream, node by node, so a large image file costs one node and its MHT path
in memory. A file that is not integrity-only (an image encrypted with a key) cannot be checked
without its key; `integrity_only` says so.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Optional

NODE = 4096
FIRST_DATA = 3072  # bytes of data in node 0
DATA_PER_MHT = 96
CHILDREN_PER_MHT = 32
SGX_FILE_ID = 0x5347585F46494C45
PLAIN_PART = 95
SECOND_PART = 3392
NAME_BYTES = 260
MAC_TEXT_LENGTH = 47  # "xx-xx-...-xx"

# AES-128 with the zero key: of the zero block (GCM's H), and of J0 = 0^96 || 1.
_H = 0x66E94BD4EF8A2C3B884CFA59CA342B2E
_E_J0 = 0x58E2FCCEFA7E3061367F1D57A4E7455A
_R = 0xE1 << 120
_TABLES: list[list[int]] = []


class ProtectedFileError(Exception):
    """The file is not an intact Occlum protected file; the message says what is wrong."""


def _tables() -> list[list[int]]:
    """16 tables of 256 entries: the product by H of each byte value at each byte position."""
    if not _TABLES:
        powers = [_H]  # powers[k] = H * x^k in GCM's bit order
        for _ in range(127):
            p = powers[-1]
            powers.append((p >> 1) ^ _R if p & 1 else p >> 1)
        for j in range(16):
            table = [0] * 256
            for b in range(1, 256):
                low = b & -b
                bit = 8 * (15 - j) + low.bit_length() - 1  # the bit of the 128-bit block
                table[b] = table[b & (b - 1)] ^ powers[127 - bit]
            _TABLES.append(table)
    return _TABLES


def gmac_zero_key(aad: bytes) -> bytes:
    """The tag of AES-128-GCM with key 0, IV 0^96, no plaintext and `aad` as additional data."""
    t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15 = _tables()
    block = aad + bytes(-len(aad) % 16) + (8 * len(aad)).to_bytes(8, "big") + bytes(8)
    from_bytes = int.from_bytes
    y = 0
    # One multiplication by H per 16 bytes, as 16 table lookups: the loop is the verifier's hot path.
    for off in range(0, len(block), 16):
        b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15 = (
            y ^ from_bytes(block[off : off + 16], "big")
        ).to_bytes(16, "big")
        y = (
            t0[b0] ^ t1[b1] ^ t2[b2] ^ t3[b3] ^ t4[b4] ^ t5[b5] ^ t6[b6] ^ t7[b7]
            ^ t8[b8] ^ t9[b9] ^ t10[b10] ^ t11[b11] ^ t12[b12] ^ t13[b13] ^ t14[b14] ^ t15[b15]
        )  # fmt: skip
    return (y ^ _E_J0).to_bytes(16, "big")


def mac_text(mac: bytes) -> str:
    return "-".join(f"{b:02x}" for b in mac)


def parse_mac_text(text: str) -> Optional[bytes]:
    """A MAC as Occlum writes it ("xx-xx-...", 16 hex pairs), as the LibOS's parse_mac reads it."""
    parts = text.split("-")
    if len(parts) != 16 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        return None
    return bytes(int(p, 16) for p in parts)


@dataclass(frozen=True)
class ProtectedFile:
    mac: bytes  # meta_data_gmac: the MAC the LibOS compares
    integrity_only: bool  # False: encrypted with a key; nothing below was checked
    name: str  # the name stored in the file (the LibOS opens it only under that name)
    size: int
    sha256: str  # of the data, when integrity_only
    data: Optional[bytes]  # the data, when asked for and integrity_only


def _nodes(f: IO[bytes]) -> Iterator[bytes]:
    while True:
        node = f.read(NODE)
        if not node:
            return
        while len(node) < NODE:
            more = f.read(NODE - len(node))
            if not more:
                raise ProtectedFileError(f"it ends inside a node ({len(node)} of {NODE} bytes)")
            node += more
        yield node


def read_protected(f: IO[bytes], keep_up_to: int = 0, max_bytes: int = 1 << 40) -> ProtectedFile:
    """Read a protected file from `f`, checking every node's tag; keep its data if it is at most
    `keep_up_to` bytes. The stream must hold exactly the nodes the file's size needs."""
    nodes = _nodes(f)
    node0 = next(nodes, None)
    if node0 is None:
        raise ProtectedFileError("it is empty")
    file_id, major = struct.unpack_from("<QB", node0, 0)
    if file_id != SGX_FILE_ID or major != 1:
        raise ProtectedFileError("it is not an SGX protected file (no SGX_FILE id of version 1)")
    stored_mac, update_flag, integrity_only = node0[77:93], node0[93], node0[94]
    second = node0[PLAIN_PART : PLAIN_PART + SECOND_PART]
    name = second[:NAME_BYTES].split(b"\0", 1)[0].decode("utf-8", "replace")
    (size,) = struct.unpack_from("<q", second, NAME_BYTES)
    if integrity_only != 1 or node0[60] != 1:
        return ProtectedFile(stored_mac, False, name, size, "", None)
    if update_flag:
        raise ProtectedFileError("its update flag is set: it was left half-written and needs recovery")
    if gmac_zero_key(second) != stored_mac:
        raise ProtectedFileError("the MAC of its metadata node is wrong: the file was changed")
    if not 0 <= size <= max_bytes:
        raise ProtectedFileError(f"it says it holds {size} bytes, more than the {max_bytes} allowed here")
    mht_key, mht_gmac = second[288:304], second[304:320]
    first = second[320 : 320 + min(size, FIRST_DATA)]
    digest = hashlib.sha256(first)
    kept = [first] if size <= keep_up_to else None
    data_nodes = -(-(size - FIRST_DATA) // NODE) if size > FIRST_DATA else 0
    mhts: dict[int, bytes] = {}

    def tag_ok(node: bytes, key: bytes, tag: bytes) -> bool:
        return key == bytes(16) and gmac_zero_key(node) == tag

    position = 1
    for d in range(data_nodes):
        m = d // DATA_PER_MHT
        if d % DATA_PER_MHT == 0:  # MHT node m comes right before its first data node
            node = next(nodes, None)
            if node is None:
                raise ProtectedFileError(f"it ends before node {position} (of {data_nodes} data nodes)")
            if m == 0:
                ok = tag_ok(node, mht_key, mht_gmac)
            else:
                parent = mhts[(m - 1) // CHILDREN_PER_MHT]
                entry = FIRST_DATA + ((m - 1) % CHILDREN_PER_MHT) * 32
                ok = tag_ok(node, parent[entry : entry + 16], parent[entry + 16 : entry + 32])
            if not ok:
                raise ProtectedFileError(f"the MAC of its MHT node {m} (node {position}) is wrong")
            mhts[m] = node  # about 1% of the file: kept, as any later MHT node may be its child
            position += 1
        node = next(nodes, None)
        if node is None:
            raise ProtectedFileError(f"it ends before node {position} (of {data_nodes} data nodes)")
        entry = (d % DATA_PER_MHT) * 32
        if not tag_ok(node, mhts[m][entry : entry + 16], mhts[m][entry + 16 : entry + 32]):
            raise ProtectedFileError(f"the MAC of its data node {d} (node {position}) is wrong")
        chunk = node[: min(NODE, size - FIRST_DATA - d * NODE)]
        digest.update(chunk)
        if kept is not None:
            kept.append(chunk)
        position += 1
    if next(nodes, None) is not None:
        raise ProtectedFileError(f"it has nodes past the {position} its size of {size} bytes needs")
    return ProtectedFile(stored_mac, True, name, size, digest.hexdigest(), b"".join(kept) if kept is not None else None)
