"""Installs the package the way a user does, into a fresh virtual environment, and uses it."""

import os
import re
import shutil
import subprocess
import sys

from conftest import PYTHON_DIR, REPO


def test_pip_install_into_a_fresh_venv(tmp_path):
    # A copy of what the build reads (python/, proto/, CMakeLists.txt), so that the in-tree build
    # leaves nothing in the checkout.
    checkout = tmp_path / "checkout"
    shutil.copytree(PYTHON_DIR, checkout / "python", ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache", "v1", "_version.py"))
    shutil.copytree(os.path.join(REPO, "proto"), checkout / "proto")
    shutil.copy(os.path.join(REPO, "CMakeLists.txt"), checkout / "CMakeLists.txt")

    venv = tmp_path / "venv"
    # Debian's grpcio, protobuf and numpy come from the system site; PyPI is not reachable here,
    # so the build uses the system's setuptools (--no-build-isolation).
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--quiet",
         str(checkout / "python")], capture_output=True, text=True, cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr

    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        version = re.search(r"project\(histguard VERSION ([0-9.]+)", f.read()).group(1)
    check = subprocess.run(
        [python, "-c",
         "import histguard, numpy; from histguard.v1 import histguard_pb2;"
         "print(histguard.__version__);"
         "print(histguard.__file__);"
         "print(histguard.to_histogram(numpy.ones((2, 3))).to_proto('a/b', 1, 2).shape)"],
        capture_output=True, text=True, cwd=tmp_path, env={"PATH": os.environ.get("PATH", "")})
    assert check.returncode == 0, check.stderr
    printed_version, location, shape = check.stdout.splitlines()
    assert printed_version == version
    assert location.startswith(str(venv))
    assert shape == "[2, 3]"

    cli = subprocess.run([python, "-m", "histguard", "send", "--help"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert cli.returncode == 0 and "TBufferJSON" in cli.stdout

    # The generated stubs went into the installed package, not into the sources.
    assert not (checkout / "python" / "histguard" / "v1").exists()
