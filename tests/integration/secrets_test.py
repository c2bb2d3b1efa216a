"""The signing key's secret material never reaches Pants' store, the remote cache, dist/ or .pants.d.

A real build (Pants 2.17.1, the Occlum test double, a BuildGrid remote cache through pants.ci.toml)
signs the example with a fresh RSA-3072 e=3 key kept outside the repo. Then every file of the local
store (raw LMDB data files included), of BuildGrid's on-disk CAS, of dist/ and of the repo copy's
.pants.d is searched, as raw bytes, for the key: each 64-character base64 line of the PEM, the whole
DER, and the DER integers of the private exponent, the primes and the CRT values (also as hex text).
The same search must find known content (the JDK archive, the measurements), so it cannot pass
vacuously.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import fake_jdk
from integration.pants_repo import copy_repo, pants_args, pants_env, pin_example_jdk, run_pants
from occlum_double.make_install import make_fake_occlum_install
from remote_cache.buildgrid import running_buildgrid
from signing_key import make_signing_key

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    shutil.which("javac") is None or shutil.which("openssl") is None, reason="needs javac and openssl"
)

DIST = "dist/examples.hello-service"


# ---------------------------------------------------------------------------------------------
# The key and its secrets
# ---------------------------------------------------------------------------------------------


def _der_read(buf: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at i."""
    tag, length = buf[i], buf[i + 1]
    i += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[i : i + n], "big")
        i += n
    return tag, i, i + length


def rsa_private_key_fields(der: bytes) -> dict:
    """PKCS#1 RSAPrivateKey: SEQUENCE { version, n, e, d, p, q, dp, dq, qinv }, as raw INTEGER bytes.

    A PKCS#8 PrivateKeyInfo (OpenSSL 3's default DER) is unwrapped to the PKCS#1 key it carries."""
    tag, start, end = _der_read(der, 0)
    assert tag == 0x30 and end == len(der)
    _, _, after_version = _der_read(der, start)
    if der[after_version] == 0x30:  # PKCS#8: version, AlgorithmIdentifier, OCTET STRING { RSAPrivateKey }
        _, _, after_alg = _der_read(der, after_version)
        tag, s, e = _der_read(der, after_alg)
        assert tag == 0x04
        return rsa_private_key_fields(der[s:e])
    names = ("version", "n", "e", "d", "p", "q", "dp", "dq", "qinv")
    out, i = {}, start
    for name in names:
        tag, s, e = _der_read(der, i)
        assert tag == 0x02, (name, tag)
        out[name] = der[s:e]
        i = e
    assert i == end
    return out


def secret_needles(pem_path: Path) -> dict:
    pem = pem_path.read_text()
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----"), pem[:40]
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(pem_path), "-outform", "DER", "-traditional"], check=True, capture_output=True
    ).stdout
    der8 = subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(pem_path), "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    f = rsa_private_key_fields(der)
    assert rsa_private_key_fields(der8) == f
    assert int.from_bytes(f["e"], "big") == 3 and len(f["n"].lstrip(b"\0")) == 384
    # Cross-check the parser against openssl's own text dump of the private exponent.
    text = subprocess.run(
        ["openssl", "rsa", "-in", str(pem_path), "-noout", "-text"], check=True, capture_output=True, text=True
    ).stdout
    block = text.split("privateExponent:")[1].split("prime1:")[0]
    assert int("".join(block.split()).replace(":", ""), 16) == int.from_bytes(f["d"], "big")

    needles: dict = {}
    lines = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    for k, ln in enumerate(lines):
        if len(ln) == 64:
            needles[f"PEM line {k}"] = ln.encode()
    needles["whole PEM body"] = "".join(lines).encode()
    needles["whole DER"] = der
    needles["whole DER (PKCS#8)"] = der8
    for name in ("d", "p", "q", "dp", "dq", "qinv"):
        value = f[name].lstrip(b"\0")
        needles[f"DER {name}"] = value
        needles[f"hex {name}"] = value.hex().encode()
        needles[f"HEX {name}"] = value.hex().upper().encode()
        needles[f"{name} little-endian"] = value[::-1]  # as SGX tools lay out key material
    assert len([k for k in needles if k.startswith("PEM line")]) >= 30
    return needles


# ---------------------------------------------------------------------------------------------
# The search: raw bytes of every regular file under a directory
# ---------------------------------------------------------------------------------------------


def search(root: Path, needles: dict) -> tuple[dict, int, int]:
    """({needle name: [files holding it]}, files searched, bytes of data searched).

    Only the extents of a file that hold data are read (SEEK_DATA/SEEK_HOLE; a hole reads as zeros),
    so the sparse block files of a CAS or an LMDB store cost what they hold. Each extent is read in
    chunks that overlap by a needle's length, so a needle across two chunks is found."""
    found: dict = {}
    files = size = 0
    longest = max(len(n) for n in needles.values())
    chunk = 64 << 20
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            files += 1
            with open(path, "rb") as fh:
                fd, end, offset = fh.fileno(), os.fstat(fh.fileno()).st_size, 0
                while offset < end:
                    try:
                        start = os.lseek(fd, offset, os.SEEK_DATA)
                    except OSError:  # ENXIO: only a hole is left
                        break
                    stop = os.lseek(fd, start, os.SEEK_HOLE)
                    for at in range(start, stop, chunk):
                        fh.seek(at)
                        data = fh.read(min(chunk, stop - at) + longest - 1)
                        size += min(chunk, stop - at)
                        for label, needle in needles.items():
                            if needle in data and str(path.relative_to(root)) not in found.get(label, []):
                                found.setdefault(label, []).append(str(path.relative_to(root)))
                    offset = stop
    return found, files, size


def test_signing_key_never_reaches_store_cache_dist_or_workdir(tmp_path: Path) -> None:
    if os.environ.get("CI") != "true" and shutil.which("pyenv") is None:
        pytest.skip("BuildGrid needs CPython 3.12 (found through pyenv here)")
    key = make_signing_key(tmp_path / "keys" / "enclave.pem")
    needles = secret_needles(key)

    root = copy_repo(tmp_path)
    shutil.copy2(REPO / "pants.ci.toml", root / "pants.ci.toml")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = fake_jdk.make_fake_jdk_archive(mirror / "jdk.tar.gz")
    archive_bytes = archive.read_bytes()
    sha = hashlib.sha256(archive_bytes).hexdigest()
    install = make_fake_occlum_install(tmp_path / "opt" / "occlum", "0.31.0")
    pin_example_jdk(root, archive, sha)
    # Sanity: the key is outside the repo copy and no file of the repo copy holds it.
    assert not str(key).startswith(str(root))
    assert search(root, needles)[0] == {}

    env = pants_env(tmp_path)
    with running_buildgrid(tmp_path / "bgd") as (address, cas):
        args = pants_args(
            root,
            tmp_path,
            "--pants-config-files=+['pants.ci.toml']",
            f"--remote-store-address={address}",
            f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']",
            f"--occlum-sign-key={key}",
            "--occlum-stage-only=no",
        )
        result = run_pants(root, args, env, "package", "examples/hello-service:enclave")
        assert result.returncode == 0, result.stderr[-5000:]
        writes = re.findall(r"^\s+remote_cache_write_successes: (\d+)$", result.stderr, re.M)
        # every step went to the remote cache: the download, the extraction, the jar, `occlum new`, the build
        assert writes and int(writes[-1]) >= 5, result.stderr[-3000:]

        meas = json.loads((root / DIST / "enclave.measurements.json").read_text())
        # The build really signed with this key: MRSIGNER = sha256(modulus, little-endian).
        n = rsa_private_key_fields(
            subprocess.run(
                ["openssl", "rsa", "-in", str(key), "-outform", "DER"], check=True, capture_output=True
            ).stdout
        )["n"].lstrip(b"\0")
        assert meas["mrsigner"] == hashlib.sha256(n[::-1]).hexdigest(), meas

        # Positive controls: content known to be in each place, found by the very same search.
        archive_slice = archive_bytes[len(archive_bytes) // 2 : len(archive_bytes) // 2 + 64]
        controls = {
            "JDK archive slice": archive_slice,  # the verified download: local store and remote CAS
            "mrenclave": meas["mrenclave"].encode(),  # the measurements file in dist/
        }
        places = {
            "local store": tmp_path / "store",
            "BuildGrid CAS": cas,
            "dist/": root / "dist",
            ".pants.d": root / ".pants.d",
            "named caches": tmp_path / "named",
            "HOME": tmp_path / "home",
        }
        expected_controls = {
            "local store": {"JDK archive slice"},
            "BuildGrid CAS": {"JDK archive slice"},
            "dist/": {"mrenclave"},
            ".pants.d": set(),
            "named caches": set(),
            "HOME": set(),
        }
        report = []
        for place, path in places.items():
            if not path.is_dir():
                assert place in ("named caches", "HOME"), place
                continue
            leaks, files, size = search(path, needles)
            hits = search(path, controls)[0]
            report.append(f"{place}: {files} files, {size / 2**20:.1f} MiB")
            assert leaks == {}, f"key material in {place}: {leaks}"
            assert expected_controls[place] <= set(hits), (place, hits)
            if place in ("local store", "BuildGrid CAS"):
                assert files > 0 and size > len(archive_bytes), (place, files, size)
        print("\nsearched for", len(needles), "needles:", "; ".join(report))

    # The needles are findable where they do exist: the PEM lines in the key file, the DER
    # integers in its DER form.
    control = tmp_path / "control"
    control.mkdir()
    (control / "enclave.der").write_bytes(needles["whole DER"])
    (control / "enclave.p8.der").write_bytes(needles["whole DER (PKCS#8)"])
    shutil.copy2(key, control / "enclave.pem")
    (control / "enclave.b64").write_bytes(needles["whole PEM body"])  # base64 without line breaks
    found = search(control, needles)[0]
    missing = sorted(k for k in needles if k.startswith(("PEM", "whole", "DER")) and k not in found)
    assert missing == [], missing
