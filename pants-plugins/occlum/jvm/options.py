"""The JVM command line an image runs, with the flags Occlum needs added."""

from __future__ import annotations

# Why each is needed on Occlum (docs/occlum-contract.md §3.6):
#  -XX:-UseCompressedOops: compressed oops make HotSpot mmap fixed low addresses, which fail and
#   are retried very slowly inside the enclave's fixed user range (Occlum #986).
#  -Dos.name=Linux: Occlum's uname() says "Occlum", so os.name would be wrong.
OCCLUM_JVM_DEFAULTS = (
    ("-XX:-UseCompressedOops", ("-XX:-UseCompressedOops", "-XX:+UseCompressedOops")),
    ("-Dos.name=Linux", ("-Dos.name=",)),
)


def effective_jvm_options(user_options: tuple[str, ...]) -> tuple[str, ...]:
    """The user's options plus Occlum's required flags, unless the user set those flags."""
    added = tuple(
        flag
        for flag, user_forms in OCCLUM_JVM_DEFAULTS
        if not any(
            opt == form or (form.endswith("=") and opt.startswith(form)) for opt in user_options for form in user_forms
        )
    )
    return (*added, *user_options)


def java_command(
    jdk_dir: str, jvm_options: tuple[str, ...], jar_path: str, main_args: tuple[str, ...]
) -> tuple[str, ...]:
    """What `occlum run` executes in the enclave."""
    return (f"{jdk_dir}/bin/java", *jvm_options, "-jar", jar_path, *main_args)
