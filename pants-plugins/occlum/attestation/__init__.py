"""What a remote verifier needs beside an enclave package: the verifier's config (ra_config) and an
SBOM bound to the measurement, and the check that they belong together. Pure: no Pants imports."""
