"""The `occlum` backend: `dragonwell_jdk` and `occlum_java_image` targets.

Enable it with `backend_packages = ["occlum"]`, from an installed wheel or from sources on
`pythonpath` (docs/installing.md). Its one dependency outside Pants is jsonschema: the wheel brings
it, and Pants 2.19.1+ installs what `requirements.txt` beside this file names.
"""

try:
    import jsonschema  # noqa: F401  (checked here so a missing dependency is named, with the fix)
except ImportError as e:
    raise ImportError(
        "The `occlum` Pants backend needs the `jsonschema` package in the environment that runs Pants, "
        "and it is missing. Add `occlum-pants-backend` (which depends on it) or `jsonschema>=4.17.3,<5` to "
        "`[GLOBAL].plugins` in pants.toml; with the backend's sources on `pythonpath`, Pants 2.19.1 and later "
        "install what pants-plugins/occlum/requirements.txt names. See docs/installing.md."
    ) from e

from occlum import rules as occlum_rules  # noqa: E402
from occlum import target_types as occlum_target_types  # noqa: E402


def target_types():
    return occlum_target_types.target_types()


def rules():
    return occlum_rules.rules()
