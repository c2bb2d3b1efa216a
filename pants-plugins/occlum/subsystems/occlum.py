"""The `[occlum]` subsystem: the Occlum release targeted, the toolchain, signing and SGX mode."""

from __future__ import annotations

from enum import Enum
from typing import Optional

from pants.core.util_rules.search_paths import ExecutableSearchPathsOptionMixin
from pants.option.option_types import EnumOption, ShellStrListOption, StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

from occlum.config.releases import SUPPORTED_RELEASES

DEFAULT_OCCLUM_RELEASE = "0.31.0"
# Where Occlum's Docker images and Ubuntu packages install the CLI.
OCCLUM_INSTALL_BIN = "/opt/occlum/build/bin"


class SgxMode(Enum):
    HW = "HW"
    SIM = "SIM"


class StageOnly(Enum):
    """Whether `pants package` stops after staging the instance."""

    NO = "no"  # build, sign and package with the toolchain; a missing toolchain is an error
    YES = "yes"  # stage only, never run the toolchain
    AUTO = "auto"  # run the toolchain when it is found, else stage only and say so


class OcclumSubsystem(Subsystem):
    options_scope = "occlum"
    help = "Options for building Occlum SGX enclave images (`occlum_java_image` targets)."

    class EnvironmentAware(ExecutableSearchPathsOptionMixin, Subsystem.EnvironmentAware):
        executable_search_paths_help = softwrap(
            f"""
            Where to look for the `occlum` CLI. Occlum's standard install folder,
            `{OCCLUM_INSTALL_BIN}`, is searched after these paths (Occlum's Docker images also
            put it on the PATH).
            """
        )

        _env_vars = ShellStrListOption(
            default=[],
            help=softwrap(
                """
                Host environment variables passed to the Occlum toolchain steps, as `NAME`
                (copied from Pants' environment) or `NAME=value`. Nothing else from the host
                reaches them (no `PATH`, no `HOME`); values become part of the steps' cache keys.
                """
            ),
            advanced=True,
        )

        @property
        def occlum_search_path(self) -> tuple[str, ...]:
            """The search path (`<PATH>` expanded by Pants' mixin), then Occlum's install folder."""
            return tuple(dict.fromkeys((*self.executable_search_path, OCCLUM_INSTALL_BIN)))

        @property
        def env_vars(self) -> tuple[str, ...]:
            return tuple(sorted(set(self._env_vars)))

    version = StrOption(
        default=DEFAULT_OCCLUM_RELEASE,
        # A string, not a help callable: Pants calls those on every run and keeps each run's options.
        help=softwrap(
            f"""
            The Occlum release the images are built for. It decides which `Occlum.json` keys are
            written and required (e.g. `feature` from 0.30.1, `metadata.enable_kss` from 0.26.3,
            `user_space_max_size` from 0.30.0), and the schema the generated config is checked
            against before anything runs. It must match the toolchain found (read from its
            `include/occlum_version.h`). Supported: {", ".join(SUPPORTED_RELEASES)}.
            """
        ),
    )
    sgx_mode = EnumOption(
        default=SgxMode.HW,
        help=softwrap(
            """
            `occlum build --sgx-mode`. `HW` builds an enclave for SGX hardware (building needs no
            SGX; running does). `SIM` builds a simulation enclave that runs without SGX: not
            confidential, for development only. `occlum package` gets `--debug` for SIM (from
            Occlum 0.23.7; older releases cannot package SIM instances at all).
            """
        ),
    )
    _sign_key = StrOption(
        default=None,
        help=softwrap(
            """
            Absolute path of the enclave signing key (RSA-3072, exponent 3), outside the repo. It
            is read only by the `occlum build` step, from this path; its bytes never enter a
            digest, Pants' caches or `dist/`. The steps' cache key carries the key's MRSIGNER
            instead, so a new key rebuilds. Unset: Occlum's template key, a public test key, which
            is refused for non-debuggable (release) images.
            """
        ),
    )
    _sign_tool = StrOption(
        default=None,
        help=softwrap(
            """
            Absolute path of a custom signing tool with `sgx_sign sign`'s interface
            (`occlum build --sign-tool`), e.g. a wrapper around an HSM. Unset: the toolchain's
            `sgx_sign`.
            """
        ),
        advanced=True,
    )
    runtime_libs = StrListOption(
        default=["libz.so.1"],
        help=softwrap(
            """
            musl libraries copied from the toolchain (`toolchains/gcc/x86_64-linux-musl/lib` of the
            Occlum install) into the image's `/lib`, next to the skeleton `occlum new` creates. The
            musl Dragonwell JDK needs `libz.so.1`.
            """
        ),
    )
    stage_only = EnumOption(
        default=StageOnly.NO,
        help=softwrap(
            """
            `no`: `pants package` builds, signs and packages the enclave with the Occlum toolchain,
            and fails with instructions when the toolchain is missing. `yes`: stop after staging the
            instance (`Occlum.json` + `image/`) and never run the toolchain. `auto`: run the
            toolchain when it is found, otherwise stage only and log what was skipped and why.
            """
        ),
    )

    @property
    def sign_key(self) -> Optional[str]:
        return self._sign_key

    @property
    def sign_tool(self) -> Optional[str]:
        return self._sign_tool
