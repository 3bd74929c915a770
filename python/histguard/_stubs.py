"""The gRPC stubs generated from proto/histguard/v1/histguard.proto when the package is built.

They are not in the source tree: ``pip install ./python`` (or ``python3 setup.py build_py``)
generates them with protoc and grpc_python_plugin into ``histguard/v1/``.
"""

try:
    from histguard.v1 import histguard_pb2 as pb
    from histguard.v1 import histguard_pb2_grpc as pb_grpc
except ImportError as e:  # pragma: no cover - only in an unbuilt source tree
    raise ImportError(
        "histguard's gRPC stubs are missing: they are generated from proto/ when the package is "
        "built. Install it with `pip install ./python` from a histguard checkout (add "
        "--no-build-isolation when offline), rather than importing python/histguard directly. "
        f"({e})") from e

__all__ = ["pb", "pb_grpc"]
