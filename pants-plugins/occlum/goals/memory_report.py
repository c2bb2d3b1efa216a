"""`pants enclave-memory`: per image, the JVM budget, the Occlum limits and the EPC it will need."""

from __future__ import annotations

from pants.engine.console import Console
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.rules import collect_rules, goal_rule
from pants.engine.target import Targets

from occlum.sizing.plan import OcclumMemoryError
from occlum.subsystems.occlum import OcclumSubsystem
from occlum.util_rules.occlum_config import OcclumConfigError, check_release, checked_occlum_json
from occlum.util_rules.staged_instance import (
    OcclumJavaImageFieldSet,
    config_inputs_for,
    default_jdk_dir,
    memory_plan_for,
)


class EnclaveMemorySubsystem(GoalSubsystem):
    name = "enclave-memory"
    help = (
        "Show how much enclave memory each `occlum_java_image` needs: the JVM budget from its "
        "`jvm_options`, the Occlum limits (derived or set by hand, with the arithmetic) and the "
        "EPC estimate, for `[occlum].version`. Needs no JDK download and no toolchain. Use it when "
        "sizing `jvm_options` or the Occlum limits, or when an enclave fails to start for lack of memory."
    )


class EnclaveMemory(Goal):
    subsystem_cls = EnclaveMemorySubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


@goal_rule
async def enclave_memory(console: Console, targets: Targets, occlum: OcclumSubsystem) -> EnclaveMemory:
    release = check_release(occlum.version)
    exit_code = 0
    images = [OcclumJavaImageFieldSet.create(t) for t in targets if OcclumJavaImageFieldSet.is_applicable(t)]
    for fs in sorted(images, key=lambda f: f.address):
        try:
            plan = memory_plan_for(fs, release)
            # The rest of what `package` checks before any download, so a refusal is one here too.
            # The JDK's folder only moves entry_points and LD_LIBRARY_PATH; Java 11's stands in.
            inputs = config_inputs_for(fs, plan, fs.jdk_dir.value or default_jdk_dir(11))
            checked_occlum_json(fs.address, release, inputs)
            console.print_stdout(plan.report(str(fs.address)))
        except (OcclumMemoryError, OcclumConfigError) as e:
            console.print_stderr(str(e))
            exit_code = 1
    if not images:
        console.print_stderr("No `occlum_java_image` targets matched.")
    return EnclaveMemory(exit_code)


def rules():
    return collect_rules()
