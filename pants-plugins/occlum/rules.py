"""Every rule of the backend, one module per line."""

from occlum.goals import package_image
from occlum.util_rules import (
    dependency_inference,
    dragonwell_jdk,
    image_files,
    image_layout,
    occlum_config,
    service_jar,
)


def rules():
    return [
        *dependency_inference.rules(),
        *dragonwell_jdk.rules(),
        *image_files.rules(),
        *image_layout.rules(),
        *occlum_config.rules(),
        *package_image.rules(),
        *service_jar.rules(),
    ]
