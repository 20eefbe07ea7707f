"""The install path the README gives, for real: a throwaway virtual
environment (--system-site-packages, so Debian's numpy and cffi serve), then
`pip install --no-build-isolation ./python` on a copy of the checkout, which
configures and builds libqembed with CMake from scratch; then the README's
one-liner from another directory."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COPY = ["CMakeLists.txt", "cmake", "include", "src", "server", "tools", "python"]


def test_pip_install_into_a_venv(model_dir):
    with tempfile.TemporaryDirectory(prefix="qembed-pip-") as tmp:
        tmp = Path(tmp)
        src = tmp / "qembed"
        src.mkdir()
        for name in COPY:
            p = ROOT / name
            if p.is_dir():
                shutil.copytree(p, src / name, ignore=shutil.ignore_patterns(
                    "build", "*.egg-info", "__pycache__", "_qembed_cffi*", "libqembed.so*"))
            else:
                shutil.copy2(p, src / name)
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True,
                       timeout=120)
        env = dict(os.environ)
        for k in ("PYTHONPATH", "QEMBED_BUILD_DIR", "QEMBED_SOURCE_DIR"):
            env.pop(k, None)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-index",
                        "--no-cache-dir", "-q", str(src / "python")], check=True, env=env, timeout=900)
        code = ("import qembed, sys; print(qembed.__file__); "
                "print(qembed.Model(sys.argv[1]).encode('hi').shape)")
        p = subprocess.run([str(venv / "bin" / "python"), "-c", code, model_dir], cwd=str(tmp),
                           env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        where, shape = p.stdout.split("\n")[:2]
        assert where.startswith(str(venv)), where
        assert shape == "(64,)"
