import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_app(tmp_path):
    """Run the real ``lmbench-run`` console entry in ``tmp_path`` against a private store."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def run(*overrides: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONUNBUFFERED": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "lmbench.harness.run", *overrides],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )
        if expect_ok:
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    run.store = store
    return run
