"""`pants check-reproducible`: build each enclave again from scratch and compare, byte for byte.

The second build re-runs every Occlum toolchain step (`occlum new`, `build`, `package`, the
measurements) in fresh sandboxes instead of taking them from the cache: a nonce that is new on
each invocation joins the steps' environment. The JDK, the jar and the staged instance are inputs
and are shared. A difference is reported per archive member, so it can be traced to its step.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid

from pants.engine.console import Console
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.rules import collect_rules, goal_rule
from pants.engine.target import Targets

from occlum.pants_compat import concurrently, get_digest_contents
from occlum.util_rules.enclave_package import EnclavePackageRequest, get_enclave_package
from occlum.util_rules.staged_instance import OcclumJavaImageFieldSet


class CheckReproducibleSubsystem(GoalSubsystem):
    name = "check-reproducible"
    help = (
        "Build each `occlum_java_image` a second time with every Occlum step re-run, and check that "
        "the package is byte-identical and MRENCLAVE/MRSIGNER are the same; list what differs if not. "
        "Use it in CI before a release, or after changing the toolchain or the signing setup, to show that "
        "a verifier can rebuild the MRENCLAVE it is asked to trust."
    )


class CheckReproducible(Goal):
    subsystem_cls = CheckReproducibleSubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


def _members(data: bytes) -> dict[str, str]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m) if m.isfile() else None
            if f is not None:
                out[m.name] = f"file {oct(m.mode)} sha256 {hashlib.sha256(f.read()).hexdigest()[:16]}"
            elif m.issym():
                out[m.name] = f"symlink -> {m.linkname}"
            else:
                out[m.name] = f"{'dir' if m.isdir() else 'other'} {oct(m.mode)}"
    return out


def diff_packages(first: bytes, second: bytes) -> list[str]:
    """Human-readable differences between two package tarballs ([] when the bytes are equal)."""
    if first == second:
        return []
    a, b = _members(first), _members(second)
    lines = [f"only in the first build: {n}" for n in sorted(set(a) - set(b))]
    lines += [f"only in the second build: {n}" for n in sorted(set(b) - set(a))]
    lines += [f"{n}: {a[n]}  vs  {b[n]}" for n in sorted(set(a) & set(b)) if a[n] != b[n]]
    return lines or ["the archives hold the same members but their bytes differ (archive metadata)"]


@goal_rule
async def check_reproducible(console: Console, targets: Targets) -> CheckReproducible:
    field_sets = [OcclumJavaImageFieldSet.create(t) for t in targets if OcclumJavaImageFieldSet.is_applicable(t)]
    if not field_sets:
        console.print_stderr("No `occlum_java_image` targets matched.")
        return CheckReproducible(exit_code=0)
    nonce = uuid.uuid4().hex
    firsts = await concurrently(
        get_enclave_package(EnclavePackageRequest(fs, goal="check-reproducible")) for fs in field_sets
    )
    seconds = await concurrently(
        get_enclave_package(EnclavePackageRequest(fs, nonce, "check-reproducible")) for fs in field_sets
    )
    contents = await concurrently(get_digest_contents(p.tarball) for p in (*firsts, *seconds))
    exit_code = 0
    for i, (fs, one, two) in enumerate(zip(field_sets, firsts, seconds)):
        a, b = contents[i][0].content, contents[len(field_sets) + i][0].content
        problems = diff_packages(a, b)
        if one.measurements != two.measurements:
            problems.insert(0, f"MRENCLAVE {one.measurements.mrenclave} vs {two.measurements.mrenclave}")
        if problems:
            exit_code = 1
            console.print_stdout(f"{fs.address}: NOT reproducible:")
            for line in problems[:50]:
                console.print_stdout(f"  - {line}")
        else:
            console.print_stdout(
                f"{fs.address}: reproducible (Occlum steps re-run): package sha256 "
                f"{hashlib.sha256(a).hexdigest()}, MRENCLAVE {one.measurements.mrenclave}, "
                f"MRSIGNER {one.measurements.mrsigner}"
            )
    return CheckReproducible(exit_code)


def rules():
    return collect_rules()
