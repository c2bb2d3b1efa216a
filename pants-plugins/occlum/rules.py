"""Every rule of the backend, one module per line."""

from occlum.goals import check_reproducible, memory_report, package_image, run_image
from occlum.util_rules import (
    dependency_inference,
    dependency_lock,
    dragonwell_jdk,
    enclave,
    enclave_package,
    image_files,
    image_layout,
    occlum_config,
    occlum_steps,
    occlum_toolchain,
    service_jar,
    staged_instance,
    tool_python,
)


def rules():
    return [
        *dependency_inference.rules(),
        *dependency_lock.rules(),
        *dragonwell_jdk.rules(),
        *enclave.rules(),
        *enclave_package.rules(),
        *image_files.rules(),
        *image_layout.rules(),
        *occlum_config.rules(),
        *occlum_steps.rules(),
        *occlum_toolchain.rules(),
        *check_reproducible.rules(),
        *memory_report.rules(),
        *package_image.rules(),
        *run_image.rules(),
        *service_jar.rules(),
        *staged_instance.rules(),
        *tool_python.rules(),
    ]
