"""The same seed gives the same numbers: the DEMO triplet experiment run twice, each in a fresh process."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def run_once(out, seed=0):
    cmd = [sys.executable, "-m", "deepfake_keras.cli", "ffpp-triplet", "--out", str(out), "--epochs", "3",
           "--seed", str(seed), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.pop("seconds")
    return metrics


def test_demo_triplet_run_is_reproducible_in_fresh_processes(tmp_path):
    first, second = run_once(tmp_path / "a"), run_once(tmp_path / "b")
    assert first == second
    assert (tmp_path / "a" / "predictions.csv").read_text() == (tmp_path / "b" / "predictions.csv").read_text()
