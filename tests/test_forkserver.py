"""The fork server the tests start the bot from gives what a new interpreter gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT
from tests.conftest import run_fresh
from tests.support.forkserver import shared

COMMANDS = [
    ("nlu", "parse", "my parcel is a week late, order 88231907"),  # the model, preloaded
    ("nlu", "parse", "--file", "-"),  # standard input
    ("report", "--period", "year"),  # bad input: one line on stderr, exit 2
    ("no-such-command",),  # argparse's own error
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_a_forked_command_prints_and_exits_as_a_new_interpreter(
    args: tuple[str, ...], cli_env: dict[str, str], database_url: str
) -> None:
    env = {**cli_env, "DATABASE_URL": database_url}
    stdin = "hi\n我的快递丢了\n"
    forked = shared().run(list(args), env, stdin, PROJECT_ROOT, timeout=300)
    new = run_fresh(*args, env=env, stdin=stdin)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        new.returncode,
        new.stdout,
        new.stderr,
    )


def test_a_forked_bot_can_be_signalled_and_its_exit_is_reported(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "TELEGRAM_BOT_TOKEN": ""}
    log = tmp_path / "out.log"
    process = shared().spawn(["run"], env, stdout=log, stderr=log)
    assert process.wait() == 2  # no token: the one-line advice, exit 2 (bad configuration)
    assert "TELEGRAM_BOT_TOKEN is not set" in log.read_text()
    process.kill()  # already gone: nothing is signalled (the pid may be someone else's)
    assert process.poll() == 2
