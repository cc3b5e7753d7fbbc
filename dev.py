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
    # its server is installed (a throwaway one, tests/support/testpg.py) or
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
    suite = [] if chosen else list(POSTGRES_SUITE)
    pytest = [PYTHON, "-m", "pytest", *parallel, *extra, *suite]
    if os.environ.get("TEST_DATABASE_URL"):
        return _pytest("PostgreSQL (TEST_DATABASE_URL)", pytest, dict(os.environ))
    found = subprocess.run(
        [PYTHON, "-m", "tests.support.testpg", "--find"], cwd=ROOT, capture_output=True, text=True
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
    command = [PYTHON, "-m", "tests.support.testpg", "--", *pytest]
    where = found.stdout.strip()
    return _pytest(f"PostgreSQL (a throwaway server from {where})", command, dict(os.environ))


def _in(path: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{path}::{name}" for name in names)


POSTGRES_SUITE = (
    # Every test runs on SQLite; these run on PostgreSQL as well, because they exercise
    # what behaves differently there. The rest of the end-to-end tests (conversations,
    # the desk's buttons and commands, relays, surveys, rendering) send the same ORM
    # statements through the same engine, which the tests below run on PostgreSQL.
    #
    # The schema, its migrations, types (JSON, time zones, bytes) and the leases' SQL:
    "tests/store",
    # Leases (PostgreSQL only: the intake, the sender, the cards, the scheduler) and
    # several bot processes on one database:
    "tests/telegram/test_workers.py",
    "tests/telegram/test_intake.py",
    "tests/telegram/test_outbox.py",
    "tests/telegram/test_staff_desk.py",  # the topics' sender holds posts:<ticket> leases
    "tests/handoff/test_lanes.py",
    # Row locking: two agents taking one ticket, the queue's order:
    "tests/handoff/test_queue.py",
    # The database going away and coming back; kill -9 and restarts with rows in flight
    # (the at-most-once marks and their transactions), the production set-up (webhook):
    "tests/telegram/test_database_outage.py",
    # kill -9 as deployed: webhook on PostgreSQL here, polling on SQLite (the embedded
    # default) in the SQLite run
    "tests/telegram/test_crash.py::test_kill_9_mid_conversation_loses_nothing_and_repeats_nothing[webhook]",
    "tests/telegram/test_webhook.py",
    *_in(
        "tests/telegram/test_e2e.py",
        "test_a_restart_in_the_middle_continues",
        "test_a_redelivered_update_is_handled_once",
    ),
    "tests/handoff/test_outage.py",
    *_in(
        "tests/handoff/test_bad_input.py",
        "test_a_topic_line_that_may_have_arrived_is_not_posted_twice",
    ),
    *_in(
        "tests/handoff/test_staff.py",
        "test_take_relay_and_close",
    ),
    # APScheduler's job store in the database, across restarts and a crash:
    *_in(
        "tests/followups/test_followups.py",
        "test_sla_timers_alert_supervisors_and_tell_the_customer",
        "test_a_restart_between_scheduling_and_firing_loses_and_repeats_nothing",
        "test_a_follow_up_running_at_a_crash_is_taken_up_after_the_restart",
        "test_reports_to_supervisors_are_scheduled_as_configured",
        "test_survey_not_solved_reopens_and_a_low_score_alerts_with_the_transcript",
    ),
    # The reports' SQL (periods, counts per hour and day, time zones) and their rows:
    *_in(
        "tests/test_reports.py",
        "test_the_period_is_whole_local_days_before_until",
        "test_the_figures_of_the_week",
        "test_a_day_counts_per_hour_and_a_month_takes_in_the_edges",
        "test_an_empty_period_says_so",
        "test_the_cli_prints_the_report",
        "test_supervisors_get_the_text_and_the_charts",
        "test_a_report_due_while_telegram_is_away_arrives_when_it_is_back",
    ),
    # Deletes across tables (privacy, retention), rows written in the customer's turn,
    # the action server reading the database, the production configuration:
    "tests/dialogue/test_privacy.py",
    "tests/dialogue/test_staff_posts.py",
    "tests/actions",
    "tests/test_docker.py",
    *_in(
        "tests/test_cli.py",
        "test_chat_continues_after_a_restart_and_ends_cleanly_on_empty_input",
    ),
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
