"""The cost of the `files` field per entry, at 0 / 1,000 / 5,000 / 20,000 entries.

    <python in which Pants imports> bench/files_scale.py [--counts 0,1000,5000,20000]

Each cell is one cold `pants --no-pantsd package` (stage only) in a fresh repo with empty stores, of a
service whose `files` maps N enclave paths: `shared`, all to one `file` target (the backend's own
cost per entry); `distinct`, to N `file` targets (what a user would write); `pants-only`, the same N
`file` targets packed by Pants' own `archive` target, with no backend code (Pants' cost per target).
The figure that matters is the time per entry above the run with none: constant per entry means
linear cost. 20,000 is the field's bound (occlum.target_types.MAX_FILES_ENTRIES). Compare cells of
one run.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for sub in ("tests/fixtures", "tests"):
    sys.path.insert(0, str(REPO / sub))

import fake_jdk  # noqa: E402
from integration.pants_repo import copy_repo, pants_args, pants_env, run_pants  # noqa: E402


def write_service(root: Path, archive: Path, entries: int, one_target: bool = False) -> None:
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    svc = root / "svc"
    svc.mkdir()
    fake_jdk.make_jar(svc / "app.jar")
    cfg = svc / "cfg"
    cfg.mkdir()
    targets = []
    mapping = []
    for i in range(entries):
        if one_target:  # every entry maps the same target: the backend's own cost, without Pants' per-target cost
            mapping.append(f'"/etc/app/{i // 1000}/f{i}.txt": ":f0"')
            continue
        (cfg / f"f{i}.txt").write_text(f"entry {i}\n")
        targets.append(f'file(name="f{i}", source="cfg/f{i}.txt")')
        mapping.append(f'"/etc/app/{i // 1000}/f{i}.txt": ":f{i}"')
    if one_target:
        (cfg / "f0.txt").write_text("entry\n")
        targets.append('file(name="f0", source="cfg/f0.txt")')
    (svc / "BUILD").write_text(
        f'dragonwell_jdk(name="jdk", url="file://{archive}", sha256="{sha}")\n'
        'file(name="app", source="app.jar")\n'
        + "\n".join(targets)
        + '\nocclum_java_image(name="enclave", jdk=":jdk", jar=":app", files={'
        + ", ".join(mapping)
        + "})\n"
    )


def run_row(kind: str, entries: int, archive: Path) -> float:
    """kind: `shared` (every entry maps one `file` target), `distinct` (N `file` targets), or
    `pants-only` (the same N `file` targets packed by Pants' own `archive`, no backend code)."""
    with tempfile.TemporaryDirectory(prefix="files-scale.") as tmp_dir:
        tmp = Path(tmp_dir)
        root = copy_repo(tmp)
        write_service(root, archive, entries, one_target=kind == "shared")
        target = "svc:enclave"
        if kind == "pants-only":
            names = ", ".join(f'":f{i}"' for i in range(entries))
            with (root / "svc/BUILD").open("a") as f:
                f.write(f'archive(name="ar", format="tar", files=[{names}])\n')
            target = "svc:ar"
        args = pants_args(root, tmp, "--occlum-stage-only=yes")
        start = time.monotonic()
        proc = run_pants(root, args, pants_env(tmp), "package", target)
        took = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(f"{kind}, {entries} entries: pants failed\n{proc.stderr[-3000:]}")
        if kind != "pants-only":
            staged = sum(1 for _ in (root / "dist/svc/enclave/image/etc/app").rglob("*.txt")) if entries else 0
            if staged != entries:
                raise SystemExit(f"{kind}, {entries} entries: {staged} files staged")
        return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="0,1000,5000,20000")
    parser.add_argument("--kinds", default="shared,distinct,pants-only")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    kinds = args.kinds.split(",")
    with tempfile.TemporaryDirectory(prefix="files-scale-jdk.") as jdk_dir:
        archive = fake_jdk.make_fake_jdk_archive(Path(jdk_dir) / "jdk.tar.gz")
        rows = {(k, n): run_row(k, n, archive) for n in counts for k in kinds if not (k == "pants-only" and n == 0)}
    print("| `files` entries | " + " | ".join(f"{k}: s, ms per entry above 0" for k in kinds) + " |")
    print("|---:|" + "---:|" * len(kinds))
    for n in counts:
        cells = []
        for k in kinds:
            took = rows.get((k, n))
            base = rows.get((k, 0), rows.get(("distinct", 0)))
            if took is None:
                cells.append("-")
            else:
                per = f", {(took - base) / n * 1000:.2f}" if base is not None and n else ""
                cells.append(f"{took:.1f}{per}")
        print(f"| {n:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
