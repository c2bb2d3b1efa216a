"""Shared helpers for the backend's RuleRunner tests: a rule runner, a served fake JDK, unpacking.

Test code: it lives under tests/ and is never shipped in the wheel.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pants.core.goals import package
from pants.core.goals.package import BuiltPackage
from pants.core.goals.run import RunRequest
from pants.core.target_types import FilesGeneratorTarget, FileTarget
from pants.core.util_rules import adhoc_binaries, source_files, subprocess_environment, system_binaries
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents, DigestEntries, FileEntry, SymlinkEntry
from pants.engine.rules import collect_rules
from pants.engine.target import InferredDependencies
from pants.testutil.rule_runner import QueryRule, RuleRunner

import fake_jdk  # tests/fixtures is on the test path (pytest.ini)
from occlum import register
from occlum.goals.run_image import OcclumJavaImageRunFieldSet
from occlum.pants_compat import ENVIRONMENTS_MOVED
from occlum.util_rules.dependency_inference import InferOcclumImageReferences
from occlum.util_rules.staged_instance import OcclumJavaImageFieldSet

# Pants 2.28 split pants.core.util_rules.environments, with no shim (mypy reads 2.17's stubs).
if TYPE_CHECKING or not ENVIRONMENTS_MOVED:
    from pants.core.util_rules import environments
else:
    from pants.core.environments import rules as environments

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_JDK_FILE = "Alibaba_Dragonwell_Standard_11.0.16.12.8_x64_alpine-linux.tar.gz"


class OcclumRuleRunner(RuleRunner):
    """A RuleRunner whose option sets always carry the backend's base options (e.g. stage only)."""

    base_options: tuple = ()

    def set_options(self, args, **kwargs) -> None:
        super().set_options([*self.base_options, *args], **kwargs)


def new_rule_runner(*, stage_only: bool = True) -> OcclumRuleRunner:
    """Stage-only by default: most tests are about the staged instance and need no toolchain."""
    rr = OcclumRuleRunner(
        rules=[
            *register.rules(),
            *package.rules(),
            # Only the local interpreter rule: the full set adds the standalone-Python download.
            *collect_rules({"get_python_for_scripts": adhoc_binaries.get_python_for_scripts}),
            *environments.rules(),
            *source_files.rules(),
            *subprocess_environment.rules(),
            *system_binaries.rules(),
            QueryRule(BuiltPackage, [OcclumJavaImageFieldSet]),
            QueryRule(RunRequest, [OcclumJavaImageRunFieldSet]),
            QueryRule(DigestContents, [Digest]),
            QueryRule(DigestEntries, [Digest]),
            QueryRule(InferredDependencies, [InferOcclumImageReferences]),
        ],
        target_types=[*register.target_types(), FileTarget, FilesGeneratorTarget],
        isolated_local_store=True,
    )
    rr.base_options = ("--occlum-stage-only=yes",) if stage_only else ()
    rr.set_options([], env_inherit={"PATH"})
    return rr


@dataclass(frozen=True)
class ServedJdk:
    path: Path
    sha256: str
    size: int

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def pin(self, version: str = "11.0.16.12.8", edition: str = "standard", libc: str = "musl") -> str:
        return f"{version}|{edition}|{libc}|linux_x86_64|{self.sha256}||{self.url}"


def serve_fake_jdk(directory: Path, name: str = DEFAULT_JDK_FILE, **kwargs) -> ServedJdk:
    """Write a Dragonwell-layout archive into `directory`, as a `file://` server would hold it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = fake_jdk.make_fake_jdk_archive(directory / name, **kwargs)
    data = path.read_bytes()
    return ServedJdk(path, hashlib.sha256(data).hexdigest(), len(data))


def runner_serving(served: ServedJdk) -> OcclumRuleRunner:
    """A stage-only rule runner whose Dragonwell 11.0.16.12.8 pin is `served`."""
    rr = new_rule_runner()
    rr.set_options([f"--dragonwell-known-versions=['{served.pin()}']"], env_inherit={"PATH"})
    return rr


@dataclass(frozen=True)
class Package:
    """A built package's files (path -> bytes) and symlinks (path -> target), under its output dir."""

    root: str
    files: dict
    symlinks: dict

    @property
    def config(self) -> dict:
        return json.loads(self.files[f"{self.root}/Occlum.json"])

    @property
    def summary(self) -> dict:
        return json.loads(self.files[f"{self.root}/occlum-image.json"])

    def image_paths(self) -> set:
        prefix = f"{self.root}/image"
        return {p[len(prefix) :] for p in (*self.files, *self.symlinks) if p.startswith(prefix + "/")}


def package_image(rule_runner: RuleRunner, address: Address) -> Package:
    tgt = rule_runner.get_target(address)
    built = rule_runner.request(BuiltPackage, [OcclumJavaImageFieldSet.create(tgt)])
    entries = rule_runner.request(DigestEntries, [built.digest])
    files, links = {}, {}
    contents = {fc.path: fc.content for fc in rule_runner.request(DigestContents, [built.digest])}
    for e in entries:
        if isinstance(e, SymlinkEntry):
            links[e.path] = e.target
        elif isinstance(e, FileEntry):
            files[e.path] = contents[e.path]
    root = built.artifacts[0].relpath
    assert root is not None
    return Package(root, files, links)
