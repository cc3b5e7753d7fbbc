#!/usr/bin/env python3
"""Set up and run the project on a fresh machine with nothing but Python 3.11+.

    python3 dev.py run     # install into .venv if needed, then run the bot
    python3 dev.py test    # install into .venv if needed, then lint, type-check and test
                           # (on SQLite, then on PostgreSQL when it is installed)

The virtual environment is (re)installed from pyproject.toml pinned by
constraints.txt whenever either file changes. Extra arguments go to the command:
`python3 dev.py test -k nlu`, `python3 dev.py run --help`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed"
PYTEST_NO_TESTS = 5


def _say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def _run(*command: str | Path) -> int:
    return subprocess.call([str(part) for part in command], cwd=ROOT)


def ensure_environment() -> None:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    wanted = digest.hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    _say("installing dependencies (pinned by constraints.txt)")
    pip = [PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    if _run(*pip, "--upgrade", "pip") != 0:
        sys.exit("dev.py: could not upgrade pip in .venv")
    if _run(*pip, "-c", "constraints.txt", "-e", ".[dev]") != 0:
        sys.exit("dev.py: installing the dependencies failed (see pip's message above)")
    STAMP.write_text(wanted)


def run_tests(extra: list[str]) -> int:
    checks: list[tuple[str, list[str | Path]]] = [
        ("ruff", [PYTHON, "-m", "ruff", "check", "."]),
        ("ruff format", [PYTHON, "-m", "ruff", "format", "--check", "."]),
        ("mypy", [PYTHON, "-m", "mypy"]),
    ]
    if not extra:
        training = _start_training()
        for name, command in checks:
            _say(f"{name} ...")
            if _run(*command) != 0:
                _say(f"{name} failed")
                training.terminate()
                training.wait()
                return 1
        if training.wait() != 0:
            _say(f"training the tests' model failed (see {TRAIN_LOG}); the tests will try again")
    # The whole suite runs on SQLite; then the part of it that exercises SQL, leases,
    # several workers and the job store runs again on PostgreSQL (POSTGRES_SUITE), when
    # its server is installed (a throwaway one, bot/store/testpg.py) or
    # TEST_DATABASE_URL names one. Both runs spread the tests over the machine's cores.
    parallel = [] if _chooses_workers(extra) else ["-n", str(_workers()), "--dist", "worksteal"]
    sqlite_env = {key: value for key, value in os.environ.items() if key != "TEST_DATABASE_URL"}
    status = _pytest("SQLite", [PYTHON, "-m", "pytest", *parallel, *extra], sqlite_env)
    if status != 0:
        return status
    # Test paths given on the command line are run on PostgreSQL as given.
    chosen = [
        arg for arg in extra if not arg.startswith("-") and (ROOT / arg.split("::")[0]).exists()
    ]
    suite = [] if chosen else [*POSTGRES_SUITE, *(f"--deselect={t}" for t in POSTGRES_SKIP)]
    pytest = [PYTHON, "-m", "pytest", *parallel, *extra, *suite]
    if os.environ.get("TEST_DATABASE_URL"):
        return _pytest("PostgreSQL (TEST_DATABASE_URL)", pytest, dict(os.environ))
    found = subprocess.run(
        [PYTHON, "-m", "bot.store.testpg", "--find"], cwd=ROOT, capture_output=True, text=True
    )
    if found.returncode != 0:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            _say(
                "REQUIRE_POSTGRES=1 but PostgreSQL's server binaries (initdb, pg_ctl) are not "
                "on PATH or in /usr/lib/postgresql/*/bin: install Debian's postgresql package"
            )
            return 1
        _say("PostgreSQL is not installed: the suite ran on SQLite only")
        return 0
    command = [PYTHON, "-m", "bot.store.testpg", "--", *pytest]
    where = found.stdout.strip()
    return _pytest(f"PostgreSQL (a throwaway server from {where})", command, dict(os.environ))


POSTGRES_SUITE = (
    # What behaves differently on PostgreSQL: the schema and its migrations, the leases
    # (intake, outbox, cards, scheduler: PostgreSQL only), several bot processes on one
    # database, the APScheduler job store, the reports' SQL, privacy deletes, the
    # production set-up. Every test here runs the real bot or its SQL.
    "tests/store",
    "tests/telegram",
    "tests/handoff",
    "tests/followups",
    "tests/actions",
    "tests/test_reports.py",
    "tests/test_cli.py",
    "tests/test_docker.py",
    "tests/dialogue/test_privacy.py",
    "tests/dialogue/test_staff_posts.py",
    # Left to SQLite: the NLU and the Bot API double (no database), the settings, and
    # the dialogue's conversations (the engine's plain ORM statements, which the
    # end-to-end tests above run on PostgreSQL through the same engine).
)


POSTGRES_SKIP = (
    # In those folders but with no database: the NLU's reports and a thousand parses.
    "tests/test_cli.py::test_nlu_test_writes_reports",
    "tests/test_cli.py::test_parse_file_keeps_order_for_a_thousand_lines",
)


TEST_MODEL_CACHE = ROOT / ".cache" / "nlu-tests"
"""Where the tests keep their trained model (tests/conftest.py: NLU_TEST_CACHE)."""
TRAIN_LOG = TEST_MODEL_CACHE / "train.log"


def _start_training() -> subprocess.Popen[bytes]:
    """The tests' model, trained (or found in its cache) while the linters run. On a fresh
    clone that is minutes of embedding the training data, which would otherwise begin
    with the tests and hold all test workers but one until it is done."""
    TEST_MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "NLU_CACHE_DIR": str(TEST_MODEL_CACHE),
        "NLU_DATA_DIR": str(ROOT / "nlu_data"),
    }
    with TRAIN_LOG.open("wb") as log:
        return subprocess.Popen(
            [PYTHON, "-m", "bot", "nlu", "parse", "hello"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _workers() -> int:
    """Test processes: TEST_WORKERS, else two per core up to 8. Most tests spend their
    time waiting (on a bot process, the double, a timer), so on 2 cores four workers
    finished the SQLite run in 5 minutes where two took 8."""
    wanted = os.environ.get("TEST_WORKERS", "")
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            sys.exit(f"dev.py: TEST_WORKERS must be a whole number of at least 1, not {wanted!r}")
        return int(wanted)
    return max(1, min(2 * (os.cpu_count() or 1), 8))


def _chooses_workers(extra: list[str]) -> bool:
    """The caller set pytest-xdist up (or off) themselves."""
    return any(
        arg in ("-n", "--numprocesses", "no:xdist") or arg.startswith(("-n", "--numprocesses="))
        for arg in extra
    )


def _pytest(backend: str, command: list[str | Path], env: dict[str, str]) -> int:
    _say(f"pytest on {backend} ...")
    status = subprocess.call([str(part) for part in command], cwd=ROOT, env=env)
    if status == PYTEST_NO_TESTS:
        _say(f"pytest on {backend} collected no tests: that is a failure, not a pass")
        return 1
    if status != 0:
        _say(f"pytest on {backend} failed")
    else:
        _say(f"pytest on {backend} passed")
    return status


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file is what says so to older Pythons
        sys.exit(f"dev.py: Python 3.11 or newer is needed (this is {sys.version.split()[0]})")
    if not argv or argv[0] not in {"run", "test", "setup"}:
        print(__doc__)
        return 2
    ensure_environment()
    command, extra = argv[0], argv[1:]
    if command == "setup":
        return 0
    if command == "test":
        return run_tests(extra)
    # The bot replaces this process, so Ctrl-C and SIGTERM reach it directly and it can
    # shut down cleanly (a parent waiting in subprocess.call would kill it after 0.25 s).
    os.chdir(ROOT)
    os.execv(str(PYTHON), [str(PYTHON), "-m", "bot", "run", *extra])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
