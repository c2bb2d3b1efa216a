"""The `[occlum]` subsystem: which Occlum release the images target."""

from __future__ import annotations

from pants.option.option_types import StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

from occlum.config.releases import SUPPORTED_RELEASES

DEFAULT_OCCLUM_RELEASE = "0.31.0"


class OcclumSubsystem(Subsystem):
    options_scope = "occlum"
    help = "Options for building Occlum SGX enclave images (`occlum_java_image` targets)."

    version = StrOption(
        default=DEFAULT_OCCLUM_RELEASE,
        help=lambda cls: softwrap(
            f"""
            The Occlum release the images are built for. It decides which `Occlum.json` keys are
            written and required (e.g. `feature` from 0.30.1, `metadata.enable_kss` from 0.26.3,
            `user_space_max_size` from 0.30.0), and the schema the generated config is checked
            against before anything runs. Supported: {', '.join(SUPPORTED_RELEASES)}.
            """
        ),
    )
