"""Builds the qembed Python package: the C library with the project's CMake
(target qembed_shared, tests and benchmarks off), then the CFFI extension
linked against it; libqembed.so.0 is copied beside the extension, which finds
it through its $ORIGIN run path, so an installed package needs no
LD_LIBRARY_PATH.

  pip install ./python                          builds libqembed in python/build/qembed-cmake
  QEMBED_BUILD_DIR=build pip install ./python   links an existing build tree's libqembed.so
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qembed_build import library_dir, source_root  # noqa: E402

LIB_SONAME = "libqembed.so.0"


class BuildExtWithLibrary(build_ext):
    """build_ext that first makes sure libqembed.so exists, then ships it."""

    def run(self):
        lib_dir = library_dir()
        if not os.environ.get("QEMBED_BUILD_DIR"):
            lib_dir.mkdir(parents=True, exist_ok=True)
            subprocess.check_call(["cmake", "-S", str(source_root()), "-B", str(lib_dir),
                                   "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DQEMBED_TESTS=OFF",
                                   "-DQEMBED_BENCH=OFF"])
            jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
            subprocess.check_call(["cmake", "--build", str(lib_dir), "--target", "qembed_shared",
                                   "-j", jobs])
        lib = lib_dir / LIB_SONAME
        if not lib.exists():
            raise SystemExit("qembed: %s is missing (build the C library first: scripts/build.sh)" % lib)
        super().run()
        dests = [Path(self.build_lib) / "qembed"]
        if self.inplace:
            dests.append(Path(__file__).resolve().parent / "src" / "qembed")
        for d in dests:
            d.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lib.resolve(), d / LIB_SONAME)


setup(cffi_modules=["qembed_build.py:ffibuilder"], cmdclass={"build_ext": BuildExtWithLibrary})
