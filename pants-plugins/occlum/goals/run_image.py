"""`pants run` for `occlum_java_image`: `occlum run <jre>/bin/java <jvm_options> -jar <jar> <main_args> <args>`."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.core.util_rules.system_binaries import BashBinary
from pants.engine.fs import MergeDigests
from pants.engine.rules import collect_rules, rule
from pants.engine.target import WrappedTargetRequest
from pants.util.logging import LogLevel

from occlum.pants_compat import merge_digests, resolve_target
from occlum.target_types import OcclumJavaImageJarField, OcclumJavaImageJdkField
from occlum.util_rules.enclave import EnclaveBuildRequest, get_built_enclave
from occlum.util_rules.occlum_steps import INSTANCE
from occlum.util_rules.staged_instance import OcclumJavaImageFieldSet, get_staged_instance


@dataclass(frozen=True)
class OcclumJavaImageRunFieldSet(OcclumJavaImageFieldSet, RunFieldSet):
    required_fields = (OcclumJavaImageJdkField, OcclumJavaImageJarField)
    # The enclave runs the image's own java, reading host state (SGX device, AESM): never cached.
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED


@rule(desc="Preparing to run an Occlum enclave", level=LogLevel.DEBUG)
async def run_occlum_java_image(field_set: OcclumJavaImageRunFieldSet, bash: BashBinary) -> RunRequest:
    # The same fields as `package`, so the staging rule (and its cache) is shared.
    wrapped = await resolve_target(WrappedTargetRequest(field_set.address, description_of_origin="<infallible>"))
    staged = await get_staged_instance(OcclumJavaImageFieldSet.create(wrapped.target))
    built = await get_built_enclave(
        EnclaveBuildRequest(field_set.address, staged.digest, staged.summary.debuggable, goal="run")
    )
    # The built instance does not carry image/ (only `occlum build` reads it); put the image the
    # build read (skeleton + staged) back beside build/, so the instance is whole again.
    instance = await merge_digests(MergeDigests([built.digest, built.image]))
    # `occlum run` works on the instance in the current directory; `pants run` starts in the
    # build root, so change into the built instance first. Extra `pants run -- args` follow.
    return RunRequest(
        digest=instance,
        args=(
            bash.path,
            "-c",
            'cd "$0" && exec "$@"',
            f"{{chroot}}/{INSTANCE}",
            built.toolchain.occlum,
            "run",
            *staged.summary.command,
        ),
    )


def rules():
    return [*collect_rules(), *OcclumJavaImageRunFieldSet.rules()]
