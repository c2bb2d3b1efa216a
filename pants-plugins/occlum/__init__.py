"""The `occlum` Pants backend: Java services (Alibaba Dragonwell) as Occlum SGX enclave images."""

# The distribution's version (pants-plugins/pyproject.toml; a test keeps them equal). SBOMs name it.
__version__ = "0.1.0"
