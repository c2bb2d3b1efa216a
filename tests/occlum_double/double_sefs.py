"""The on-disk formats of Occlum's images, written for the Occlum test double (tests only; see
README.md): integrity-only SGX protected files (`occlum-protect-integrity protect`) and SEFS images
(`sefs-cli zip`), as Occlum 0.31.0 writes them. Stdlib only; it does not import the plugin.

Protected files (occlum/linux-sgx, sdk/protected_fs/sgx_tprotected_fs, integrity-only mode):
4096-byte nodes; node 0 = a 95-byte plain part and a 3392-byte part (name, size, mht_key, mht_gmac,
the first 3072 bytes of data); then MHT node m (at 1 + 97*m) before its 96 data nodes. Every node
is kept as plaintext and tagged with AES-128-GCM under a zero key and IV, the node as additional
data; the file's MAC is the tag of node 0's second part.

SEFS (occlum/sefs, rcore-fs-sefs and sefs-cli): `metadata`, a protected file of 128-byte blocks
(0: the superblock, 1 + 1024*g: group g's free map, 1 = free; any other used block: the inode of
that number, root 2) and one protected file per inode named by its number as 16 little-endian
bytes in hex. A directory's file is its 264-byte entries (`.`, `..`, then the children sorted by
name); a symlink's is its target. The image's MAC is the MAC of `metadata`.
"""

import hashlib
import os
import stat
import struct

NODE = 4096
SGX_FILE_ID = 0x5347585F46494C45
_H = 0x66E94BD4EF8A2C3B884CFA59CA342B2E  # AES-128_0(0^128)
_E_J0 = 0x58E2FCCEFA7E3061367F1D57A4E7455A  # AES-128_0(0^96 || 1)
_TABLES: list = []

SEFS_MAGIC = 0x2F8DBE2A
BLOCK = 128
GROUP = 1024
ROOT_INODE = 2
DIRENT = 264
TYPE_FILE, TYPE_DIR, TYPE_SYMLINK = 1, 2, 3


def _mul_x(v):
    return (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1


def _tables():
    # For each of the 16 byte positions, the product by H of every byte value there.
    if not _TABLES:
        h_times = [_H]
        for _ in range(127):
            h_times.append(_mul_x(h_times[-1]))
        for pos in range(16):
            singles = [h_times[8 * pos + 7 - bit] for bit in range(8)]
            table = []
            for value in range(256):
                acc = 0
                for bit in range(8):
                    if value >> bit & 1:
                        acc ^= singles[bit]
                table.append(acc)
            _TABLES.append(table)
    return _TABLES


def _libcrypto_gmac():
    """gmac through the machine's OpenSSL (ctypes), as fast as the real tools' AES-NI code, or None
    when there is no libcrypto: the pure-Python gmac below then gives the same tags, only slower."""
    try:
        import ctypes
        import ctypes.util

        lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
        vp, cp, ip = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        lib.EVP_CIPHER_CTX_new.restype = vp
        lib.EVP_aes_128_gcm.restype = vp
        lib.EVP_EncryptInit_ex.argtypes = [vp, vp, vp, cp, cp]
        lib.EVP_EncryptUpdate.argtypes = [vp, vp, ctypes.POINTER(ip), cp, ip]
        lib.EVP_EncryptFinal_ex.argtypes = [vp, cp, ctypes.POINTER(ip)]
        lib.EVP_CIPHER_CTX_ctrl.argtypes = [vp, ip, ip, cp]
        ctx = lib.EVP_CIPHER_CTX_new()
        zero = bytes(16)
        if not ctx or lib.EVP_EncryptInit_ex(ctx, lib.EVP_aes_128_gcm(), None, zero, zero[:12]) != 1:
            return None
    except (OSError, AttributeError, TypeError):
        return None
    outl = ctypes.c_int()
    tag = ctypes.create_string_buffer(16)
    get_tag = 0x10  # EVP_CTRL_GCM_GET_TAG

    def fast(aad):
        ok = lib.EVP_EncryptInit_ex(ctx, None, None, None, zero[:12])  # same key: a new message
        ok &= lib.EVP_EncryptUpdate(ctx, None, ctypes.byref(outl), aad, len(aad))
        ok &= lib.EVP_EncryptFinal_ex(ctx, tag, ctypes.byref(outl))
        ok &= lib.EVP_CIPHER_CTX_ctrl(ctx, get_tag, 16, tag)
        if ok != 1:
            raise RuntimeError("libcrypto refused an AES-GCM step")
        return tag.raw

    # Trust it only if it agrees with the pure-Python tags here.
    probes = (b"", b"\x01" * 17, bytes(range(256)) * 16)
    return fast if all(fast(p) == pure_gmac(p) for p in probes) else None


def gmac(aad):
    """AES-128-GCM tag with key 0, IV 0, no plaintext, `aad` as additional data."""
    if not _FAST:
        _FAST.append(_libcrypto_gmac() or pure_gmac)
    return _FAST[0](aad)


_FAST: list = []


def pure_gmac(aad):
    """gmac in pure Python: 16 table lookups per block."""
    t = _tables()
    data = aad + bytes(-len(aad) % 16) + struct.pack(">QQ", 8 * len(aad), 0)
    t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15 = t
    y = 0
    for i in range(0, len(data), 16):
        b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15 = (
            y ^ int.from_bytes(data[i : i + 16], "big")
        ).to_bytes(16, "big")
        y = (
            t0[b0] ^ t1[b1] ^ t2[b2] ^ t3[b3] ^ t4[b4] ^ t5[b5] ^ t6[b6] ^ t7[b7]
            ^ t8[b8] ^ t9[b9] ^ t10[b10] ^ t11[b11] ^ t12[b12] ^ t13[b13] ^ t14[b14] ^ t15[b15]
        )  # fmt: skip
    return (y ^ _E_J0).to_bytes(16, "big")


def protected_file(data, name, integrity_only=True):
    """The bytes of a protected file holding `data`, stored under `name`, and its MAC.
    integrity_only=False stands in for a file encrypted with a key (see README.md)."""
    size = len(data)
    rest = data[3072:]
    data_nodes = [rest[i : i + NODE].ljust(NODE, b"\0") for i in range(0, len(rest), NODE)]
    data_tags = [gmac(n) for n in data_nodes]
    mht_count = -(-len(data_nodes) // 96)
    mhts = [b""] * mht_count
    mht_tags = [b""] * mht_count
    for m in range(mht_count - 1, -1, -1):  # children (32m+1 .. 32m+32) before parents
        node = b"".join(bytes(16) + data_tags[d] for d in range(96 * m, min(96 * m + 96, len(data_nodes))))
        node = node.ljust(3072, b"\0")
        for c in range(32 * m + 1, min(32 * m + 33, mht_count)):
            node += bytes(16) + mht_tags[c]
        mhts[m] = node.ljust(NODE, b"\0")
        mht_tags[m] = gmac(mhts[m])
    second = (
        name.encode().ljust(260, b"\0")
        + struct.pack("<q", size)
        + bytes(16 + 4 + 16)  # mc_uuid, mc_value, mht_key (zero in integrity-only mode)
        + (mht_tags[0] if mht_count else bytes(16))
        + data[:3072].ljust(3072, b"\0")
    )
    mac = gmac(second) if integrity_only else os.urandom(16)
    plain = (
        struct.pack("<QBB", SGX_FILE_ID, 1, 0)
        + bytes(32 + 16 + 2)  # key id, cpu svn, isv svn
        + b"\x01"  # use_user_kdk_key
        + bytes(16)  # attribute mask
        + mac
        + b"\x00"  # update_flag
        + (b"\x01" if integrity_only else b"\x00")
    )
    out = [(plain + second).ljust(NODE, b"\0")]
    for m in range(mht_count):
        out.append(mhts[m])
        out.extend(data_nodes[96 * m : 96 * m + 96])
    return b"".join(out), mac


def cached_protected_file(data, name, cache_dir, integrity_only=True):
    """protected_file, with its result kept by content in `cache_dir` (None: no cache). The real tools
    are compiled code with AES-NI; the double's pure-Python tags would make every rebuild of a JDK
    image cost tens of seconds that a real `occlum build` does not. The bytes are the same either way."""
    if cache_dir is None or not integrity_only:
        return protected_file(data, name, integrity_only)
    key = hashlib.sha256(name.encode("utf-8", "surrogateescape") + b"\0" + data).hexdigest()
    path = os.path.join(cache_dir, key)
    try:
        with open(path, "rb") as f:
            blob = f.read()
        return blob, blob[77:93]
    except OSError:
        pass
    blob, mac = protected_file(data, name)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
    return blob, mac


def _inode_record(size, kind, mode, nlinks, blocks, inode_id, mac):
    return (
        struct.pack("<QIHHIIII", size, kind, mode, nlinks, blocks, 0, 0, 0)
        + bytes(48)  # atime, mtime, ctime: zero in an image
        + inode_id.to_bytes(16, "little")
        + mac
    )


def zip_image(src, dest_root, integrity_only=True, cache_dir=None):
    """`sefs-cli zip src dest_root`: writes the SEFS image; returns its 16-byte MAC.
    Regular files, directories and symlinks are kept (mode & 0o777); other kinds are skipped."""
    os.makedirs(dest_root)
    records = {}
    next_id = [ROOT_INODE]

    def allocate():
        next_id[0] += 1
        if next_id[0] % GROUP == 1:  # block 1 + 1024*g is group g's free map
            next_id[0] += 1
        return next_id[0]

    def store(inode_id, content):
        name = inode_id.to_bytes(16, "little").hex()
        blob, mac = cached_protected_file(content, name, cache_dir, integrity_only)
        with open(os.path.join(dest_root, name), "wb") as f:
            f.write(blob)
        return mac

    def add_dir(path, inode_id, parent_id):
        entries = [(inode_id, b".", TYPE_DIR), (parent_id, b"..", TYPE_DIR)]
        subdirs = []
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            st = os.lstat(full)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                continue
            child = allocate()
            mode = stat.S_IMODE(st.st_mode) & 0o777
            if stat.S_ISDIR(st.st_mode):
                entries.append((child, name.encode(), TYPE_DIR))
                subdirs.append(child)
                add_dir(full, child, inode_id)
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(full).encode()
                entries.append((child, name.encode(), TYPE_SYMLINK))
                records[child] = _inode_record(len(target), TYPE_SYMLINK, mode, 1, 0, child, store(child, target))
            else:
                with open(full, "rb") as f:
                    content = f.read()
                entries.append((child, name.encode(), TYPE_FILE))
                records[child] = _inode_record(len(content), TYPE_FILE, mode, 1, 0, child, store(child, content))
        body = b"".join(struct.pack("<I", i) + n.ljust(256, b"\0") + struct.pack("<I", k) for i, n, k in entries)
        mode = stat.S_IMODE(os.lstat(path).st_mode) & 0o777
        records[inode_id] = _inode_record(
            0, TYPE_DIR, mode, 2 + len(subdirs), len(entries), inode_id, store(inode_id, body)
        )

    add_dir(src, ROOT_INODE, ROOT_INODE)
    top = max(records)
    groups = top // GROUP + 1
    blocks = bytearray(max(BLOCK * top + 112, BLOCK * (2 + GROUP * (groups - 1))))
    blocks[0:16] = struct.pack("<IIII", SEFS_MAGIC, groups * GROUP, groups * GROUP - len(records) - 1 - groups, groups)
    for g in range(groups):
        free = bytearray(b"\xff" * BLOCK)  # bit i of group g: block 1024*g + i; 1 = free
        for i in range(GROUP):
            block = GROUP * g + i
            if block == 0 or block % GROUP == 1 or block in records:
                free[i >> 3] &= ~(1 << (i & 7)) & 0xFF
        at = BLOCK * (1 + GROUP * g)
        blocks[at : at + BLOCK] = free
    for inode_id, record in records.items():
        blocks[BLOCK * inode_id : BLOCK * inode_id + 112] = record
    blob, mac = protected_file(bytes(blocks), "metadata", integrity_only)
    with open(os.path.join(dest_root, "metadata"), "wb") as f:
        f.write(blob)
    return mac
