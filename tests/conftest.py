"""Shared fixtures: one trained model per test session, cached where the CLI finds it too."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT, Settings
from bot.nlu.model import TriageModel, load_or_train

NLU_DATA = PROJECT_ROOT / "nlu_data"


@pytest.fixture(scope="session")
def nlu_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlu-cache")


@pytest.fixture(scope="session")
def model(nlu_cache_dir: Path) -> TriageModel:
    """Trained from nlu_data/ and written to the session's cache folder."""
    return load_or_train(NLU_DATA, nlu_cache_dir)


@pytest.fixture
def settings(nlu_cache_dir: Path, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        nlu_cache_dir=nlu_cache_dir,
        database_url=f"sqlite:///{tmp_path / 'test.db'}",
    )


@pytest.fixture
def cli_env(nlu_cache_dir: Path, model: TriageModel, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for `python -m bot` in a subprocess: the session's model cache, no .env."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELEGRAM_")}
    env.update({"NLU_CACHE_DIR": str(nlu_cache_dir), "PYTHONIOENCODING": "utf-8"})
    yield env


def run_cli(
    *args: str, env: dict[str, str], stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or PROJECT_ROOT,
        timeout=120,
        check=False,
    )
