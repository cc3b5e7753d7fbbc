"""Start `python -m bot run` for a test in a few hundred milliseconds instead of seven.

A fresh `python -m bot run` spends ~4–5 s of CPU before it takes its first update:
importing scikit-learn, SciPy, python-telegram-bot and the rest (~2.5 s), unpickling the
trained model (~0.7 s) and loading jieba's dictionary (~1 s). The end-to-end tests start
the bot some three hundred times per run of the suite, so on a 2-core CI machine that
alone was a quarter of the run.

This server pays it once per test worker: it imports the bot, loads the model cached for
the tests and jieba's dictionary, and then, for each start, forks. The child sets the
test's environment, working folder and log file, and runs `bot/__main__.py` exactly as
`python -m bot run` does (runpy), so everything after the imports — settings, migrations,
the model handed over instead of unpickled again, the event loop, signals, the exit — is
the product's own code path. Nothing that starts threads runs here before a fork (no
event loop, no database, no encoder: OpenMP is not fork-safe once it has run), so the
child is a clean single-threaded process.

Protocol: one JSON object per line on stdin, one answer per line on the original stdout.
    {"op": "spawn", "args": ["run"], "env": {...}, "cwd": "...",
     "stdout": "...", "stderr": "...", "stdin": "..." | null}  ->  {"pid": N}
    {"op": "poll", "pid": N}                                    ->  {"returncode": int | null}
    {"op": "wait", "pid": N}                                    ->  {"returncode": int}

The CLI tests run their `python -m bot …` commands the same way (`run`). `TEST_BOT_EXEC=1`
makes the tests start every bot and command as a new interpreter instead, and tests marked
`exec` always do.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any

from bot.config import PROJECT_ROOT

_models: dict[Path, Any] = {}
"""Models loaded here, by cache file: the child's load_or_train finds them (see _preload)."""
_set_by_imports: dict[str, str] = {}
"""Environment variables the bot's own imports set (bot/telegram/__init__.py's
PTB_TIMEDELTA): a child gets the test's environment, then these, as a new interpreter
running those imports would."""


def _import_the_bot() -> None:
    """What `python -m bot run` imports before its first update (most of its start-up)."""
    import jieba

    before = dict(os.environ)
    import bot.cli
    import bot.telegram.runner  # noqa: F401

    _set_by_imports.update({k: v for k, v in os.environ.items() if before.get(k) != v})

    jieba.setLogLevel(30)  # its "Building prefix dict" lines would go to every bot's log
    jieba.initialize()


def _preload(env: dict[str, str]) -> None:
    """Load the model this bot will ask for, if it is already trained and cached, and
    make the child's `load_or_train` return it instead of unpickling the file again.
    A model not cached yet is left to the child, which trains it as a bot would (training
    here would start the encoder's OpenMP threads, and a fork after that can hang)."""
    from bot.nlu import model as model_module
    from bot.nlu.model import ModelConfig, cache_path, fingerprint

    data_dir = Path(env.get("NLU_DATA_DIR") or PROJECT_ROOT / "nlu_data")
    cache_dir = Path(env.get("NLU_CACHE_DIR") or PROJECT_ROOT / ".cache" / "nlu")
    if not data_dir.is_dir():
        return
    data_hash = fingerprint(data_dir)
    path = cache_path(cache_dir, data_hash, ModelConfig())
    if path not in _models:
        loaded = model_module._load_cached(path, data_hash, "zh")
        if loaded is None:
            return
        _models[path] = loaded
    if not getattr(model_module, "_forkserver_patched", False):
        original = model_module._load_cached

        def load_cached(path: Path, data_hash: str, default_language: str) -> Any:
            model = _models.get(path)
            if model is not None and model.fingerprint == data_hash and path.exists():
                model.default_language = default_language
                return model
            return original(path, data_hash, default_language)

        model_module._load_cached = load_cached
        model_module._forkserver_patched = True  # type: ignore[attr-defined]


def _spawn(request: dict[str, Any], answers: IO[bytes]) -> int:
    env = {str(k): str(v) for k, v in request["env"].items()}
    outputs = {1: str(request["stdout"]), 2: str(request["stderr"])}  # checked before the fork
    try:
        _preload(env)
    except Exception as error:  # the child loads or trains it itself, as a bot would
        print(f"forkserver: model not preloaded: {error}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    # The child: from here on it is `python -m bot ARGS`, with the test's settings.
    try:
        for fd, name in outputs.items():
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, fd)
            os.close(out)
        given = os.open(request.get("stdin") or os.devnull, os.O_RDONLY)
        os.dup2(given, 0)
        os.close(given)
        # a new reader for the new fd 0 (the old one read this server's requests)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        answers.close()
        os.environ.clear()
        os.environ.update(env)
        for name, value in _set_by_imports.items():
            os.environ.setdefault(name, value)
        os.chdir(request.get("cwd") or PROJECT_ROOT)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sys.argv = ["bot", *request.get("args", ["run"])]
    except BaseException:
        os._exit(70)
    try:
        runpy.run_module("bot", run_name="__main__", alter_sys=True)
    except SystemExit:
        raise  # bot/__main__.py always exits through sys.exit
    except BaseException:  # as the interpreter would: the traceback, exit status 1
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    raise SystemExit(0)


def _returncode(pid: int, block: bool) -> int | None:
    try:
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return _reaped.get(pid)
    if done == 0:
        return None
    _reaped[pid] = os.waitstatus_to_exitcode(status)
    return _reaped[pid]


_reaped: dict[int, int] = {}


def serve() -> None:
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # a stray print must not end up in the answers
    _import_the_bot()
    answers.write(b'{"ready": true}\n')
    for line in sys.stdin.buffer:
        answer: dict[str, Any]
        try:
            request = json.loads(line)
            op = request["op"]
            if op == "spawn":
                answer = {"pid": _spawn(request, answers)}
            elif op in ("poll", "wait"):
                answer = {"returncode": _returncode(int(request["pid"]), op == "wait")}
            else:
                answer = {"error": f"unknown op {op!r}"}
        except Exception as error:  # a bad request is the client's error, said there
            answer = {"error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer).encode() + b"\n")


class ForkServer:
    """The client, in the test process: one server per test worker, started on first use."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "tests.support.forkserver"],
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                assert self._process.stdout is not None
                ready = self._process.stdout.readline()
                if not ready:
                    raise RuntimeError("the fork server did not start (see stderr above)")
            assert self._process.stdin is not None and self._process.stdout is not None
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
            if not line:
                raise RuntimeError("the fork server stopped (see stderr above)")
            answer = dict(json.loads(line))
            if "error" in answer:
                raise RuntimeError(f"fork server: {answer['error']}")
            return answer

    def spawn(
        self,
        args: list[str],
        env: dict[str, str],
        *,
        stdout: Path,
        stderr: Path,
        stdin: Path | None = None,
        cwd: Path = PROJECT_ROOT,
    ) -> Forked:
        """`python -m bot ARGS`, started; its output appended to the files given."""
        answer = self._call(
            {
                "op": "spawn",
                "args": args,
                "env": env,
                "cwd": str(cwd),
                "stdout": str(stdout),
                "stderr": str(stderr),
                "stdin": None if stdin is None else str(stdin),
            }
        )
        return Forked(self, int(answer["pid"]))

    def run(
        self, args: list[str], env: dict[str, str], stdin: str | None, cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """`python -m bot ARGS` to its end, as subprocess.run(..., capture_output=True,
        text=True) would give it."""
        with tempfile.TemporaryDirectory(prefix="forked-cli-") as folder:
            files = Path(folder)
            given = None
            if stdin is not None:
                given = files / "stdin"
                given.write_text(stdin, encoding="utf-8")
            process = self.spawn(
                args, env, stdout=files / "out", stderr=files / "err", stdin=given, cwd=cwd
            )
            deadline = time.monotonic() + timeout
            while process.poll() is None:
                if time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    raise subprocess.TimeoutExpired(["python", "-m", "bot", *args], timeout)
                time.sleep(0.02)
            out, err = ((files / name).read_text(encoding="utf-8") for name in ("out", "err"))
        return subprocess.CompletedProcess(["python", "-m", "bot", *args], process.wait(), out, err)

    def returncode(self, pid: int, *, block: bool) -> int | None:
        code = self._call({"op": "wait" if block else "poll", "pid": pid})["returncode"]
        return None if code is None else int(code)

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait()
            self._process = None


class Forked:
    """The bits of subprocess.Popen the tests use, for a bot the fork server started."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.returncode(self.pid, block=False)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self.server.returncode(self.pid, block=True)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, number: int) -> None:
        if self.poll() is None:  # never a signal to a pid that may belong to someone else
            os.kill(self.pid, number)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def shared() -> ForkServer:
    """This test worker's fork server (started on first use, closed when the worker ends)."""
    global _shared
    if _shared is None:
        _shared = ForkServer()
        atexit.register(_shared.close)
    return _shared


_shared: ForkServer | None = None


def fresh_processes() -> bool:
    """TEST_BOT_EXEC=1: every bot and command a new interpreter, as before the fork server."""
    return os.environ.get("TEST_BOT_EXEC") == "1"


if __name__ == "__main__":
    serve()
