"""Shared fixtures: where the tiny model, the golden cases and the CLI are.

ctest sets QEMBED_TEST_MODEL, QEMBED_GOLDEN and QEMBED_CLI (tests/python/CMakeLists.txt);
run by hand, the defaults are the checkout's ../shared and build/ trees, with
PYTHONPATH naming a built package (build/python-lib).
"""
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def model_dir() -> str:
    d = os.environ.get("QEMBED_TEST_MODEL", str(SHARED / "models" / "qwen3-tiny-synth"))
    if not os.path.isdir(d):
        pytest.fail("test model missing: %s" % d)
    return d


@pytest.fixture(scope="session")
def golden() -> dict:
    with open(os.environ.get("QEMBED_GOLDEN", str(SHARED / "golden" / "tiny_golden.json"))) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def cli() -> str:
    q = os.environ.get("QEMBED_CLI", str(ROOT / "build" / "qembed"))
    if not os.access(q, os.X_OK):
        pytest.fail("qembed CLI missing: %s" % q)
    return q


@pytest.fixture(scope="session")
def model(model_dir):
    import qembed
    m = qembed.Model(model_dir)
    yield m
    m.close()
