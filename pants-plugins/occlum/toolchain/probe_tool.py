"""Identify an Occlum toolchain and signing keys, printing only public facts as JSON.

Self-contained (stdlib only, plus sandbox_guard.py beside it): the plugin runs it as a Process that
is never persisted to a cache (it reads files outside the sandbox, which may change). Its output is
public: the release, a fingerprint of the toolchain, and MRSIGNERs. Private key bytes are read here
and go nowhere else.

    python3 probe_tool.py toolchain --occlum /opt/occlum/build/bin/occlum
    python3 probe_tool.py mrsigner --key /path/to/key.pem
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys

if __name__ == "__main__":  # a script in the sandbox: the guard lies beside it (bundled_tools.py)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sandbox_guard  # type: ignore[import-not-found,unused-ignore]
else:
    from occlum.toolchain import sandbox_guard

SGX_MODULUS_BYTES = 384  # RSA-3072


class ProbeError(Exception):
    pass


# --- version ---------------------------------------------------------------------------------


def read_version_header(text: str) -> str:
    parts = []
    for name in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(rf"#define\s+OCCLUM_{name}_VERSION\s+(\d+)", text)
        if not m:
            raise ProbeError(f"it has no OCCLUM_{name}_VERSION define")
        parts.append(m.group(1))
    return ".".join(parts)


# --- RSA keys: just enough DER to reach the modulus -------------------------------------------


def _der_read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """Read one TLV at pos; return (tag, value, next position)."""
    if pos + 2 > len(data):
        raise ProbeError("the key's DER data is truncated")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ProbeError("the key's DER length is invalid")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ProbeError("the key's DER data is truncated")
    return tag, data[pos : pos + length], pos + length


def _der_children(value: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(value):
        tag, v, pos = _der_read(value, pos)
        out.append((tag, v))
    return out


def rsa_public_numbers(pem: str) -> tuple[int, int]:
    """(modulus, exponent) of a PEM RSA private key (PKCS#1 or PKCS#8) or public key."""
    m = re.search(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", pem, re.S)
    if not m:
        raise ProbeError("it is not a PEM file (no -----BEGIN ...----- block)")
    kind, body = m.group(1), m.group(2)
    if "ENCRYPTED" in kind or "Proc-Type: 4,ENCRYPTED" in body:
        raise ProbeError("it is encrypted; sgx_sign needs an unencrypted key (keep it outside the repo)")
    try:
        der = base64.b64decode("".join(line for line in body.splitlines() if ":" not in line), validate=False)
    except ValueError as e:
        raise ProbeError(f"its base64 body is invalid: {e}") from e
    tag, seq, _ = _der_read(der, 0)
    items = _der_children(seq)
    if kind == "RSA PRIVATE KEY":  # PKCS#1: version, n, e, ...
        ints = [v for t, v in items if t == 0x02]
        n, exp = ints[1], ints[2]
    elif kind == "PRIVATE KEY":  # PKCS#8: version, alg, OCTET STRING(PKCS#1)
        octet = next(v for t, v in items if t == 0x04)
        inner = _der_children(_der_read(octet, 0)[1])
        ints = [v for t, v in inner if t == 0x02]
        n, exp = ints[1], ints[2]
    elif kind == "RSA PUBLIC KEY":  # PKCS#1 public: n, e
        ints = [v for t, v in items if t == 0x02]
        n, exp = ints[0], ints[1]
    elif kind == "PUBLIC KEY":  # SPKI: alg, BIT STRING(PKCS#1 public)
        bits = next(v for t, v in items if t == 0x03)
        inner = _der_children(_der_read(bits[1:], 0)[1])
        n, exp = inner[0][1], inner[1][1]
    else:
        raise ProbeError(f"it holds a {kind!r}, not an RSA key")
    return int.from_bytes(n, "big"), int.from_bytes(exp, "big")


def mrsigner_of_pem(pem: str) -> str:
    """SGX MRSIGNER: sha256 of the 3072-bit modulus in little-endian byte order."""
    n, e = rsa_public_numbers(pem)
    bits = n.bit_length()
    if bits != 3072 or e != 3:
        raise ProbeError(
            f"it is a {bits}-bit RSA key with exponent {e}; SGX signing needs RSA-3072 with exponent 3 "
            "(e.g. `openssl genrsa -3 -out key.pem 3072`)"
        )
    return hashlib.sha256(n.to_bytes(SGX_MODULUS_BYTES, "little")).hexdigest()


# --- the toolchain ---------------------------------------------------------------------------


def _hash_file(h, path: str) -> None:
    h.update(os.path.relpath(path).encode() + b"\0")
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sandbox_guard.check()
            h.update(chunk)


def probe_toolchain(occlum: str) -> dict:
    install = os.path.normpath(os.path.join(os.path.dirname(os.path.realpath(occlum)), "..", ".."))
    header = os.path.join(install, "include", "occlum_version.h")
    try:
        with open(header) as f:
            release = read_version_header(f.read())
    except OSError:
        raise ProbeError(
            f"found {occlum}, but not its {header} (the CLI has no --version; the release is read from "
            "that header). This looks like a runtime-only install; install the full Occlum toolchain"
        ) from None
    except ProbeError as e:
        raise ProbeError(f"cannot read the Occlum release from {header}: {e}") from e
    # The identity covers the CLI, its build recipe, the version header and the LibOS/PAL binaries.
    h = hashlib.sha256()
    paths = [os.path.realpath(occlum), header]
    for sub in ("build/bin", "build/lib"):
        d = os.path.join(install, sub)
        if os.path.isdir(d):
            paths += sorted(
                os.path.join(d, n)
                for n in os.listdir(d)
                if n.startswith(("occlum_build.mk", "libocclum-libos", "libocclum-pal", "gen_internal_conf"))
                and os.path.isfile(os.path.join(d, n))
            )
    cwd = os.getcwd()
    os.chdir(install)
    try:
        for p in paths:
            _hash_file(h, p)
    finally:
        os.chdir(cwd)
    template_key = os.path.join(install, "etc", "template", "Enclave.pem")
    template_mrsigner = None
    if os.path.isfile(template_key):
        with open(template_key) as f:
            template_mrsigner = mrsigner_of_pem(f.read())
    return {
        "occlum": os.path.abspath(occlum),
        "install_dir": install,
        "release": release,
        "fingerprint": h.hexdigest(),
        "template_mrsigner": template_mrsigner,
        "sgx_sign": os.path.join(install, "sgxsdk-tools", "bin", "x64", "sgx_sign"),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("toolchain")
    t.add_argument("--occlum", required=True)
    k = sub.add_parser("mrsigner")
    k.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "toolchain":
            out = probe_toolchain(args.occlum)
        else:
            try:
                with open(args.key) as f:
                    pem = f.read()
            except OSError as e:
                raise ProbeError(f"cannot read it: {e.strerror}") from e
            except UnicodeDecodeError:
                raise ProbeError("it is not a text PEM file") from None
            out = {"mrsigner": mrsigner_of_pem(pem)}
    except ProbeError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except OSError as e:  # never a traceback for the user
        where = f" ({e.filename})" if e.filename else ""
        sys.stderr.write(f"error: cannot read the Occlum install: {e.strerror or _one_line(str(e))}{where}\n")
        return 3
    except Exception as e:
        sys.stderr.write(f"error: the probe failed unexpectedly: {_one_line(str(e))}\n")
        return 3
    sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
    return 0


def _one_line(text: str) -> str:
    text = " ".join(text.split()) or "no details"
    return text if len(text) <= 200 else text[:200] + "…"


if __name__ == "__main__":
    sandbox_guard.start()
    sys.exit(main(sys.argv[1:]))
