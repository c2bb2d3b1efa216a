"""What a remote verifier needs beside an enclave package: the verifier's config (ra_config), an
SBOM of the measured image, and verify-package, which checks both against what the package's signed
enclave proves. Pure: no Pants imports."""
