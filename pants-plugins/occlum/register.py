"""The `occlum` backend: `dragonwell_jdk` and `occlum_java_image` targets.

Enable it with `backend_packages = ["occlum"]` and `pythonpath = ["%(buildroot)s/pants-plugins"]`.
"""

from occlum import rules as occlum_rules
from occlum import target_types as occlum_target_types


def target_types():
    return occlum_target_types.target_types()


def rules():
    return occlum_rules.rules()
