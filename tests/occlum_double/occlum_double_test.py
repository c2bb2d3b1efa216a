"""Tests of the Occlum TEST DOUBLE itself (tests/occlum_double), against the
contract (docs/occlum-contract.md) and the vectors (tests/data/occlum) with the real checker's verdicts."""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from occlum_double.make_install import REPO_ROOT, make_fake_occlum_install

CASES = REPO_ROOT / "tests" / "data" / "occlum" / "cases"  # see tests/data/occlum/README.md
INDEX = json.loads((CASES / "index.json").read_text())
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C"}


@pytest.fixture(scope="session")
def installs(tmp_path_factory):
    base = tmp_path_factory.mktemp("opt")
    return {r: make_fake_occlum_install(base / r, r) for r in ("0.20.0", "0.31.0")}


def occlum(install, cwd, *args, env=None):
    e = dict(ENV)
    e.update(env or {})
    return subprocess.run(
        [str(install / "build" / "bin" / "occlum")] + list(args),
        cwd=str(cwd),
        env=e,
        capture_output=True,
        text=True,
    )


def new_instance(install, parent, name="inst"):
    r = occlum(install, parent, "new", name)
    assert r.returncode == 0, r.stdout + r.stderr
    return Path(parent) / name


@pytest.fixture(scope="session")
def built(installs, tmp_path_factory):
    """One built HW instance per release, shared by read-only tests."""
    out = {}
    for rel, inst in installs.items():
        d = new_instance(inst, tmp_path_factory.mktemp("b" + rel.replace(".", "")))
        r = occlum(inst, d, "build")
        assert r.returncode == 0, r.stdout + r.stderr
        out[rel] = d
    return out


# ------------------------------------------------------------------ vectors
@pytest.mark.parametrize("case", INDEX, ids=[c["file"] for c in INDEX])
def test_vectors(case, installs, tmp_path):
    inst = installs[case["occlum_version"]]
    d = new_instance(inst, tmp_path)
    shutil.copyfile(CASES / case["file"], d / "Occlum.json")
    r = occlum(inst, d, "build", "--sgx-mode", "SIM")
    verdict = case["real_checker"]
    if verdict in ("ok", "ignored", "run-fails"):
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Built the Occlum image and enclave successfully" in r.stdout
        if verdict == "run-fails":
            (d / "image" / "bin" / "hello").write_text("#!/bin/sh\nexit 0\n")
            (d / "image" / "bin" / "hello").chmod(0o755)
            rr = occlum(inst, d, "run", "/bin/hello")
            assert rr.returncode != 0, rr.stdout + rr.stderr
    elif verdict == "crash":
        assert r.returncode != 0
        assert "panicked at" in r.stderr
        assert "Built the Occlum" not in r.stdout
        if "enable_kss" not in case["file"]:
            assert 'It is not a valid Occlum configuration file.: Error("' in r.stderr
    elif verdict == "empty":
        assert r.returncode != 0
        assert (
            "is not correct." in r.stdout
            or "wrong configuration" in r.stdout
            or "Mount configuration invalid" in r.stdout
            or "cache_size" in r.stdout
            or "disk_size" in r.stdout
        ), r.stdout
        sys_json = "Occlum.json" if case["occlum_version"] == "0.20.0" else ".Occlum_sys.json"
        assert (d / "build" / sys_json).read_bytes() == b""
        assert (d / "build" / "Enclave.xml").read_bytes() == b""
        assert "empty" in r.stderr and "sgx_sign" in r.stderr
    else:
        pytest.fail("unknown verdict " + verdict)


def test_panic_position(installs, tmp_path):
    inst = installs["0.31.0"]
    d = new_instance(inst, tmp_path)
    cfg = json.loads((d / "Occlum.json").read_text())
    del cfg["feature"]
    (d / "Occlum.json").write_text(json.dumps(cfg, indent=4))
    r = occlum(inst, d, "build")
    n = len((d / "Occlum.json").read_text().splitlines())
    assert 'Error("missing field `feature`", line: %d, column: 1)' % n in r.stderr
    (d / "Occlum.json").write_text("{\n  // comment\n}")
    r = occlum(inst, d, "build")
    assert 'Error("key must be a string", line: 2, column: 3)' in r.stderr


# ------------------------------------------------------------------ layout
def test_new_init_layout_0310(installs, tmp_path):
    inst = installs["0.31.0"]
    d = new_instance(inst, tmp_path)
    assert (d / ".__occlum_status").read_text() == "initialized"
    for x in ("bin", "lib", "lib64", "root", "host", "tmp", "dev", "proc", "sbin", "ext2"):
        assert (d / "image" / x).is_dir()
    assert (d / "image/etc/hosts").read_text() == "127.0.0.1   localhost\n"
    assert (d / "image/etc/localtime").read_bytes() == (inst / "etc/localtime").read_bytes()
    for lib in ("ld-musl-x86_64.so.1", "libc.so", "libstdc++.so.6", "libgcc_s.so.1", "libgomp.so.1"):
        assert (d / "image/lib" / lib).is_file() and (d / "initfs/lib" / lib).is_file()
    assert (d / "initfs/bin/init").is_file() and (d / "initfs/dev").is_dir() and (d / "initfs/proc").is_dir()
    assert (d / "initfs/etc/hosts").is_file() and (d / "initfs/etc/localtime").is_file()
    assert (d / "Occlum.json").read_bytes() == (inst / "etc/template/Occlum.json").read_bytes()
    r = occlum(inst, tmp_path, "new", "inst")
    assert r.returncode == 1 and 'Error: destination "inst" already exists' in r.stdout
    r = occlum(inst, d, "init")
    assert r.returncode == 1 and "has been initialized as an Occlum instance" in r.stdout


def test_new_init_layout_0200(installs, tmp_path):
    inst = installs["0.20.0"]
    d = new_instance(inst, tmp_path)
    assert not (d / "initfs").exists()
    assert not (d / "image/sbin").exists() and not (d / "image/etc/localtime").exists()
    assert (d / "image/lib/libc.so").is_file() and (d / "image/proc").is_dir()
    assert json.loads((d / "Occlum.json").read_text())["resource_limits"]["user_space_size"] == "256MB"


def test_build_outputs_0310(installs, built):
    inst, d = installs["0.31.0"], built["0.31.0"]
    assert (d / ".__occlum_status").read_text() == "built"
    assert (d / ".sgx_mode").read_text() == "HW"
    mac = (d / "build/mount/.ROOT_MAC").read_text()
    assert len(mac.split("-")) == 16 and all(len(x) == 2 for x in mac.split("-"))
    assert (d / "build/initfs/.ROOT_MAC").is_file() and (d / "build/mount/__ROOT/metadata").is_file()
    for b in ("occlum-run", "occlum_exec_client", "occlum_exec_server"):
        assert os.readlink(str(d / "build/bin" / b)) == str(inst / "build/bin" / b)
    lib = d / "build/lib"
    assert os.readlink(str(lib / "libocclum-libos.so.0")) == "libocclum-libos.so.0.31.0"
    assert os.readlink(str(lib / "libocclum-libos.so")) == "libocclum-libos.so.0"
    assert os.readlink(str(lib / "libocclum-pal.so.0")) == "libocclum-pal.so.0.31.0"
    assert (lib / "libocclum-libos.signed.so").is_file()
    sysj = json.loads((d / "build/.Occlum_sys.json").read_text())
    assert sysj["resource_limits"]["user_space_max_size"] == "314572800B"
    assert sysj["app"][1]["mount"][2]["options"]["layers"][0]["options"]["MAC"] == mac
    assert (d / "build/.Occlum_sys.json.protected").is_file()
    assert "<TCSPolicy>0</TCSPolicy>" in (d / "build/Enclave.xml").read_text()
    assert (d / "run/mount/__ROOT").is_dir() and (d / "run/initfs/__ROOT").is_dir()
    assert json.loads((d / "initfs/etc/image_config.json").read_text()) == {"image_type": "integrity-only"}


def test_build_outputs_0200_sim(installs, tmp_path):
    inst = installs["0.20.0"]
    d = new_instance(inst, tmp_path)
    r = occlum(inst, d, "build", "--sgx-mode", "WHATEVER")
    assert r.returncode == 0, r.stderr
    assert "SGX mode: SIM" in r.stdout
    assert (d / ".sgx_mode").read_text() == "SIM"
    assert (d / "build/lib/libocclum-libos_sim.so.0.20.0").is_file()
    assert (d / "build/Occlum.json").is_file() and (d / "build/Occlum.json.protected").is_file()
    assert not (d / "build/mount/.ROOT_MAC").exists() and (d / "run/mount/tmp").is_dir()
    assert "<TCSPolicy>1</TCSPolicy>" in (d / "build/Enclave.xml").read_text()


def test_build_flag_errors(installs, built):
    inst, d = installs["0.31.0"], built["0.31.0"]
    r = occlum(inst, d, "build", "--bogus")
    assert r.returncode == 1 and "Error: Unknown option: --bogus" in r.stderr
    r = occlum(inst, d, "build", "--sign-key", "/nonexistent.pem")
    assert r.returncode == 1 and "Error: invalid signing key path: /nonexistent.pem" in r.stderr
    r = occlum(inst, d, "build", "--sign-tool", "/nonexistent")
    assert r.returncode == 1 and "Error: invalid signing tool path: /nonexistent" in r.stderr
    r = occlum(installs["0.20.0"], d, "build", "--image-key", "k")
    assert r.returncode == 1 and "Unknown option: --image-key" in r.stderr


# --------------------------------------------------------- measurements
def mr(inst, d, what):
    r = occlum(inst, d, "print", what)
    assert r.returncode == 0, r.stderr
    v = r.stdout.strip()
    assert len(v) == 64 and all(c in "0123456789abcdef" for c in v)
    return v


def gen_key(path, bits=3072, e=3):
    subprocess.run(
        ["openssl", "genrsa", "-3", "-out", str(path), str(bits)]
        if e == 3
        else ["openssl", "genrsa", "-out", str(path), str(bits)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_measurements(installs, built, tmp_path):
    inst, d1 = installs["0.31.0"], built["0.31.0"]
    d2 = new_instance(inst, tmp_path, "other")
    assert occlum(inst, d2, "build").returncode == 0
    m1, s1 = mr(inst, d1, "mrenclave"), mr(inst, d1, "mrsigner")
    assert mr(inst, d2, "mrenclave") == m1
    # MRSIGNER is sha256 of the little-endian modulus of the template key
    mod = (
        subprocess.run(
            ["openssl", "rsa", "-in", str(inst / "etc/template/Enclave.pem"), "-noout", "-modulus"],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        .stdout.strip()
        .split("=")[1]
    )
    assert s1 == hashlib.sha256(bytes.fromhex(mod)[::-1]).hexdigest()
    # image change -> MRENCLAVE changes
    (d2 / "image/bin/x").write_text("x")
    assert occlum(inst, d2, "build").returncode == 0
    assert mr(inst, d2, "mrenclave") != m1
    os.remove(str(d2 / "image/bin/x"))
    # other key (PKCS#8 too): MRSIGNER changes, MRENCLAVE does not
    key = tmp_path / "k.pem"
    gen_key(key)
    r = occlum(inst, d2, "build", "--sign-key", str(key))
    assert r.returncode == 0, r.stderr
    assert mr(inst, d2, "mrenclave") == m1 and mr(inst, d2, "mrsigner") != s1
    # wrong exponent / size is refused like sgx_sign
    bad = tmp_path / "bad.pem"
    gen_key(bad, 2048, 65537)
    r = occlum(inst, d2, "build", "--sign-key", str(bad))
    assert r.returncode != 0 and "3072-bit" in r.stderr
    # custom --sign-tool with the real interface
    log = tmp_path / "tool.log"
    tool = tmp_path / "tool.sh"
    tool.write_text('#!/bin/sh\necho "$@" > %s\nexec %s "$@"\n' % (log, inst / "sgxsdk-tools/bin/x64/sgx_sign"))
    tool.chmod(0o755)
    r = occlum(inst, d2, "build", "--sign-tool", str(tool))
    assert r.returncode == 0, r.stderr
    assert log.read_text().split() == [
        "sign",
        "-key",
        str(inst / "etc/template/Enclave.pem"),
        "-config",
        "build/Enclave.xml",
        "-enclave",
        "build/lib/libocclum-libos.so.0",
        "-out",
        "build/lib/libocclum-libos.signed.so",
    ]


def test_print_0200_and_dump(installs, built, tmp_path):
    inst, d = installs["0.20.0"], built["0.20.0"]
    r = occlum(inst, d, "print", "mrenclave")
    assert r.returncode == 1 and "Error: unknown sub-command print" in r.stderr and "Usage:" in r.stdout
    r = subprocess.run(
        [
            str(inst / "sgxsdk-tools/bin/x64/sgx_sign"),
            "dump",
            "-enclave",
            "build/lib/libocclum-libos.signed.so",
            "-dumpfile",
            str(tmp_path / "d"),
        ],
        cwd=str(d),
    )
    assert r.returncode == 0
    lines = (tmp_path / "d").read_text().splitlines()
    i = lines.index("metadata->enclave_css.body.enclave_hash.m:")
    for line in lines[i + 1 : i + 3] + lines[-2:]:
        toks = line.split()
        assert len(toks) == 16 and all(t.startswith("0x") and len(t) == 4 for t in toks)
    assert lines[-3] == "mrsigner->value:"
    r = occlum(installs["0.31.0"], tmp_path, "--version")
    assert r.returncode == 1 and "Error: unknown sub-command --version" in r.stderr
    r = occlum(installs["0.31.0"], tmp_path)
    assert r.returncode == 1 and "Error: no sub-command is given" in r.stderr
    e = tmp_path / "e"
    e.mkdir()
    (e / ".__occlum_status").write_text("initialized")
    r = occlum(installs["0.31.0"], e, "print", "mrenclave")
    assert r.returncode == 1 and "Error: No build/lib/libocclum-libos.signed.so existed" in r.stderr


# ------------------------------------------------------------------ package
def test_package(installs, tmp_path):
    inst = installs["0.31.0"]
    d = new_instance(inst, tmp_path, "app")
    assert occlum(inst, d, "build", "--sgx-mode", "SIM").returncode == 0
    r = occlum(inst, d, "package")
    assert r.returncode == 1 and "simulation mode" in r.stdout
    assert occlum(inst, d, "build").returncode == 0
    r = occlum(inst, d, "package")
    assert r.returncode == 1 and '"--debug"' in r.stdout
    r = occlum(inst, d, "package", "--debug", "mypkg")
    assert r.returncode == 0 and "The package mypkg.tar.gz is generated successfully" in r.stdout
    import tarfile

    with tarfile.open(str(d / "mypkg.tar.gz")) as t:
        names = t.getnames()
    assert "mypkg/build/lib/libocclum-libos.signed.so" in names and "mypkg/.sgx_mode" in names
    assert "mypkg/build/.Occlum_sys.json.protected" in names and "mypkg/initfs/bin/init" in names
    assert not any(n.split("/")[1:2] == ["image"] for n in names) and all(n.startswith("mypkg") for n in names)
    first = (d / "mypkg.tar.gz").read_bytes()
    assert occlum(inst, d, "package", "--debug", "mypkg.tar.gz").returncode == 0
    assert (d / "mypkg.tar.gz").read_bytes() == first
    # 0.20.0: HW + debuggable only warns; no transform
    i20 = installs["0.20.0"]
    d20 = new_instance(i20, tmp_path, "app20")
    assert occlum(i20, d20, "build").returncode == 0
    r = occlum(i20, d20, "package", "p")
    assert r.returncode == 0 and "Warning" in r.stdout
    with tarfile.open(str(d20 / "p.tar.gz")) as t:
        assert "app20/build/Occlum.json.protected" in t.getnames()


# ---------------------------------------------------------------------- run
def test_run(installs, tmp_path):
    inst = installs["0.31.0"]
    d = new_instance(inst, tmp_path)
    r = occlum(inst, d, "run", "/bin/hi")
    assert r.returncode == 1 and "not built yet" in r.stdout
    cfg = json.loads((d / "Occlum.json").read_text())
    cfg["env"] = {
        "default": ["OCCLUM=yes", "LD_LIBRARY_PATH=/lib:/nope", "FOO=default"],
        "untrusted": ["FOO", "OCCLUM_RELEASE_ENCLAVE"],
    }
    cfg["metadata"]["debuggable"] = False
    (d / "Occlum.json").write_text(json.dumps(cfg))
    (d / "image/bin/hi").write_text('#!/bin/sh\necho "ARGS=$0 $*"\nenv | sort\nexit ${CODE:-3}\n')
    (d / "image/bin/hi").chmod(0o755)
    (d / "image/opt").mkdir()
    (d / "image/opt/hi").write_text("#!/bin/sh\nexit 0\n")
    (d / "image/opt/hi").chmod(0o755)
    assert occlum(inst, d, "build").returncode == 0
    r = occlum(inst, d, "run", "/bin/hi", "a", "/lib/libc.so", env={"FOO": "host", "BAR": "x"})
    assert r.returncode == 3, r.stderr
    assert "image/bin/hi a %s/image/lib/libc.so\n" % d in r.stdout  # $0 of a #! script is its path
    assert "FOO=host" in r.stdout and "BAR=" not in r.stdout and "OCCLUM=yes" in r.stdout
    assert "OCCLUM_RELEASE_ENCLAVE=1" in r.stdout
    assert "LD_LIBRARY_PATH=%s/image/lib:/nope" % d in r.stdout
    env_lines = [line for line in r.stdout.splitlines() if line.startswith("PATH=")]
    assert env_lines == []
    assert (d / ".__occlum_status").read_text() == "running"
    r = occlum(inst, d, "run", "/opt/hi")
    assert r.returncode == 127 and "program path is NOT a valid entry point" in r.stderr
    r = occlum(inst, d, "run", "/bin/missing")
    assert r.returncode == 127
    r = occlum(inst, d, "run", "/bin/hi", env={"CODE": "0"})
    assert r.returncode == 3  # CODE is not in env.untrusted
    cfg["env"]["untrusted"].append("CODE")
    (d / "Occlum.json").write_text(json.dumps(cfg))
    r = occlum(inst, d, "run", "/bin/hi", env={"CODE": "0"})
    assert r.returncode == 0 and (d / ".__occlum_status").read_text() == "built"


def test_gmac_through_libcrypto_matches_the_pure_python_tags():
    # The double's builds take the machine's libcrypto when it has one (the speed of the real tools'
    # native code); both ways must give the same tags, and the GCM spec's own vector.
    from occlum_double import double_sefs

    zero_key_empty = bytes.fromhex("58e2fccefa7e3061367f1d57a4e7455a")  # GCM spec, test case 1
    assert double_sefs.pure_gmac(b"") == zero_key_empty == double_sefs.gmac(b"")
    fast = double_sefs._libcrypto_gmac()
    if fast is None:
        pytest.skip("no libcrypto here: the double uses its pure-Python tags")
    blobs = [os.urandom(n) for n in (1, 15, 16, 17, 4096, 4096 * 3 + 5)]
    assert [fast(b) for b in blobs] == [double_sefs.pure_gmac(b) for b in blobs]
    double_sefs.gmac(b"")
    assert double_sefs._FAST[0] is not double_sefs.pure_gmac  # the fast one is taken
