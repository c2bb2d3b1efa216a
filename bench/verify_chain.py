"""How long verify-package takes to follow Occlum's chain through a JDK-sized image, and its memory.

    PYTHONPATH=pants-plugins:tests python3 bench/verify_chain.py [MB]

Builds an image of about MB megabytes (default 200: a JDK's `lib/modules` and `libjvm.so`, 400
small files, a 40 MB jar) with the test double (`occlum new` + `occlum build`, which writes
Occlum 0.31.0's SEFS and protected-file formats), tars the files `occlum package` ships, then
runs the verifier's chain in a child process: .builtin_config -> the protected config -> the image's
metadata -> its directories -> every file's nodes (no SBOM is given, so that last link fails).
Prints the double's build time, the verifier's time per scan, its
throughput and the child's peak RSS.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "pants-plugins"), str(REPO / "tests")]

from occlum_double.make_install import make_fake_occlum_install  # noqa: E402

CHILD = r"""
import json, resource, sys, time
from occlum.attestation.occlum_chain import LINK_IMAGE, check_chain, first_scan_readers
from occlum.attestation.package_reader import read_bytes, read_package
from occlum.attestation.untrusted import Doc
from occlum.attestation.verify import Report
package = sys.argv[1]
t0 = time.monotonic()
signed_name = "build/lib/libocclum-libos.signed.so"
first = read_package(package, lambda r: read_bytes(1 << 29) if r == signed_name else first_scan_readers(r))
t1 = time.monotonic()
report = Report()
check_chain(report, package, first, Doc("sbom", {}), first.read[signed_name])  # no SBOM: that link fails
t2 = time.monotonic()
assert LINK_IMAGE in report.checked, report.lines
import re
counted = [re.search(r"\((\d+) files\)", line) for line in report.lines]
files = int(next(m.group(1) for m in counted if m))
print(json.dumps({"first_scan": t1 - t0, "second_scan": t2 - t1, "files": files,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _image(image: Path, megabytes: int) -> int:
    rnd = random.Random(7)
    jdk = image / "usr/lib/jvm/java-11-alibaba-dragonwell/jre"
    (jdk / "lib/server").mkdir(parents=True)
    sizes = {"lib/modules": int(megabytes * 0.6), "lib/server/libjvm.so": int(megabytes * 0.1)}
    for rel, mb in sizes.items():
        with open(jdk / rel, "wb") as f:
            for _ in range(mb):
                f.write(rnd.randbytes(1 << 20) if hasattr(rnd, "randbytes") else os.urandom(1 << 20))
    for i in range(400):
        (jdk / "lib" / f"small{i}.so").write_bytes(os.urandom(50_000))
    (image / "usr/lib/spring").mkdir(parents=True)
    (image / "usr/lib/spring/svc.jar").write_bytes(os.urandom(int(megabytes * 0.2) << 20))
    return sum(p.stat().st_size for p in image.rglob("*") if p.is_file())


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        install = make_fake_occlum_install(work / "opt", "0.31.0")
        env = {**os.environ, "PATH": f"{install / 'build/bin'}:{os.environ['PATH']}"}
        subprocess.run(["occlum", "new", "inst"], cwd=work, env=env, check=True, capture_output=True)
        inst = work / "inst"
        cfg = json.loads((inst / "Occlum.json").read_text())
        cfg["metadata"]["debuggable"] = False
        (inst / "Occlum.json").write_text(json.dumps(cfg))
        size = _image(inst / "image", megabytes)
        t = time.monotonic()
        subprocess.run(["occlum", "build"], cwd=inst, env=env, check=True, capture_output=True)
        build = time.monotonic() - t
        package = work / "inst.tar.gz"
        with tarfile.open(package, "w:gz", compresslevel=1) as tf:
            for rel in (
                "Occlum.json",
                "build/lib/libocclum-libos.signed.so",
                "build/mount",
                "build/initfs",
                "build/.Occlum_sys.json.protected",
            ):
                tf.add(inst / rel, arcname=f"inst/{rel}")
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(package)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "pants-plugins")},
        )
        figures = json.loads(child.stdout)
        total = figures["first_scan"] + figures["second_scan"]
        print(f"image: {size / 1e6:.0f} MB in {figures['files']} files; package {package.stat().st_size / 1e6:.0f} MB")
        print(f"double's occlum build (SEFS + protected files, pure Python): {build:.1f} s")
        print(f"verifier, first scan (enclave, config, metadata): {figures['first_scan']:.1f} s")
        print(f"verifier, the chain's scans (directories, every reached file's nodes): {figures['second_scan']:.1f} s")
        rate = size / 1e6 / total
        print(f"verifier, whole chain: {total:.1f} s = {rate:.1f} MB/s; peak RSS {figures['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
