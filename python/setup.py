"""Builds the histguard Python package from a histguard checkout.

At build time (``pip install ./python``, or ``python3 setup.py build_py``):

* the gRPC stubs are generated from ``../proto/histguard/v1/histguard.proto`` into
  ``histguard/v1/`` of the build (never into the source tree), with ``protoc`` and
  ``grpc_python_plugin`` (Debian: protobuf-compiler, protobuf-compiler-grpc), or with
  ``python -m grpc_tools.protoc`` where grpcio-tools is installed instead. ``$PROTOC`` and
  ``$GRPC_PYTHON_PLUGIN`` choose other binaries.
* the version is the daemon's: ``project(histguard VERSION x.y.z)`` in ``../CMakeLists.txt``,
  written into ``histguard/_version.py`` of the build.

``$HISTGUARD_SOURCE_DIR`` points at the checkout when this directory was copied elsewhere.
"""

import os
import re
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = ["histguard/v1/histguard.proto"]


def source_dir():
    root = os.environ.get("HISTGUARD_SOURCE_DIR") or os.path.dirname(HERE)
    if not os.path.isfile(os.path.join(root, "proto", PROTOS[0])):
        sys.exit(f"histguard: cannot find proto/{PROTOS[0]} under {root}: build the Python "
                 "package from a histguard checkout (pip install ./python), or set "
                 "HISTGUARD_SOURCE_DIR to one")
    return root


def daemon_version():
    path = os.path.join(source_dir(), "CMakeLists.txt")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"project\s*\(\s*histguard\b[^)]*?\bVERSION\s+([0-9][0-9A-Za-z.+-]*)", text)
    if not m:
        sys.exit(f"histguard: no `project(histguard VERSION ...)` in {path}")
    return m.group(1)


def protoc_command():
    protoc = os.environ.get("PROTOC") or shutil.which("protoc")
    plugin = os.environ.get("GRPC_PYTHON_PLUGIN") or shutil.which("grpc_python_plugin")
    if protoc and plugin:
        return [protoc, f"--plugin=protoc-gen-grpc_python={plugin}"]
    try:
        import grpc_tools.protoc  # noqa: F401  (grpcio-tools from PyPI)
        return [sys.executable, "-m", "grpc_tools.protoc"]
    except ImportError:
        pass
    sys.exit("histguard: generating the gRPC stubs needs protoc and grpc_python_plugin "
             "(Debian: apt install protobuf-compiler protobuf-compiler-grpc) or grpcio-tools")


def generate(out_dir):
    """Writes the stubs and _version.py under out_dir/histguard/."""
    root = source_dir()
    proto_dir = os.path.join(root, "proto")
    package_dir = os.path.join(out_dir, "histguard")
    os.makedirs(os.path.join(package_dir, "v1"), exist_ok=True)
    command = protoc_command() + [
        f"--proto_path={proto_dir}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}"] + [os.path.join(proto_dir, p) for p in PROTOS]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 and "--pyi_out" in result.stderr:  # an older protoc
        command = [c for c in command if not c.startswith("--pyi_out")]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"histguard: {' '.join(command)} failed:\n{result.stderr}")
    with open(os.path.join(package_dir, "v1", "__init__.py"), "w", encoding="utf-8") as f:
        f.write('"""Generated from proto/histguard/v1/histguard.proto at build time."""\n')
    with open(os.path.join(package_dir, "_version.py"), "w", encoding="utf-8") as f:
        f.write(f'"""Generated at build time from CMakeLists.txt."""\n\n'
                f'__version__ = "{daemon_version()}"\n')


class BuildWithStubs(build_py):
    """build_py that also generates the stubs and the version module into the build."""

    def run(self):
        super().run()
        if not self.dry_run:
            generate(self.build_lib)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        base = os.path.join(self.build_lib, "histguard")
        generated = ["_version.py", "v1/__init__.py", "v1/histguard_pb2.py",
                     "v1/histguard_pb2_grpc.py"]
        return outputs + [os.path.join(base, g) for g in generated]


setup(version=daemon_version(), cmdclass={"build_py": BuildWithStubs})
