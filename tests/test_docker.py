"""docker/: the image, the compose file, the proxy and `.env.example`, checked by parsing.

There is no Docker engine where these tests run, so nothing is built or started: the
Dockerfile is read instruction by instruction, compose.yaml with PyYAML, the Caddyfile
and `.dockerignore` with small matchers. What they assert is what an operator would
trip over: a root or fat image, a worker without health check, two schedulers, a
command the CLI does not have, a variable the bot does not read, a secret in a file.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url

from bot.cli import build_parser
from bot.config import PROJECT_ROOT, Settings

DOCKER = PROJECT_ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
CADDYFILE = DOCKER / "Caddyfile"
HEALTHCHECK_SCRIPT = DOCKER / "healthcheck.py"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"

SETTINGS_NAMES = {name.upper() for name in Settings.model_fields}
# Variables in .env.example that the bot does not read: the postgres image's and Caddy's.
NON_BOT_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "DOMAIN"}
SECRETS = {"TELEGRAM_BOT_TOKEN", "WEBHOOK_SECRET", "POSTGRES_PASSWORD"}
BUILD_TOOLS = {"build-essential", "gcc", "g++", "make", "cmake", "clang", "git", "pkg-config"}
FALSE = {"false", "0", "no", "off"}
TRUE = {"true", "1", "yes", "on"}
BOT = ["python", "-m", "bot"]
SHELL_OPERATORS = {"&&", "||", ";", "|", ">", ">>", "<", "2>", "2>&1", "&"}
TELEGRAM_WEBHOOK_PORTS = {443, 80, 88, 8443}
GOOD_TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


# --- a Dockerfile, instruction by instruction ----------------------------------------------


@dataclass
class Instruction:
    keyword: str
    flags: dict[str, str]
    rest: str

    def argv(self) -> list[str]:
        """The exec form's list, or the shell form split like a shell would."""
        if self.rest.startswith("["):
            return list(json.loads(self.rest))
        return shlex.split(self.rest)


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.rest):
                key, _, value = word.partition("=")
                values[key] = value
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments, and parser directives such as `# syntax=`
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        flags: dict[str, str] = {}
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name], rest = value, rest.strip()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], name=name))
            continue
        assert stages, f"{keyword} before the first FROM"
        stages[-1].instructions.append(Instruction(keyword, flags, rest))
    return stages


def bot_invocations(words: list[str]) -> Iterator[list[str]]:
    """The arguments of every `python -m bot ...` in a command line."""
    for start in range(len(words) - len(BOT) + 1):
        if words[start : start + len(BOT)] == BOT:
            argv: list[str] = []
            for word in words[start + len(BOT) :]:
                if word in SHELL_OPERATORS:
                    break
                argv.append(word)
            yield argv


def apt_packages(stage: Stage) -> set[str]:
    packages: set[str] = set()
    for run in stage.all("RUN"):
        words = run.argv()
        for start, word in enumerate(words):
            if word == "install" and start > 0 and words[start - 1] in ("apt-get", "apt"):
                for package in words[start + 1 :]:
                    if package in SHELL_OPERATORS:
                        break
                    if not package.startswith("-"):
                        packages.add(package)
    return packages


# --- .dockerignore, with Docker's rules: last match wins, a directory takes its contents ---


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, position = "", 0
    while position < len(pattern):
        if pattern.startswith("**/", position):
            out, position = out + "(?:.*/)?", position + 3
        elif pattern.startswith("**", position):
            out, position = out + ".*", position + 2
        elif pattern[position] == "*":
            out, position = out + "[^/]*", position + 1
        elif pattern[position] == "?":
            out, position = out + "[^/]", position + 1
        elif pattern[position] == "[":
            end = pattern.index("]", position)
            out, position = out + pattern[position : end + 1], end + 1
        else:
            out, position = out + re.escape(pattern[position]), position + 1
    return re.compile(out + r"\Z")


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        rules.append((keep, _glob_regex(line.lstrip("!").strip("/"))))
    return rules


def in_build_context(path: str) -> bool:
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for keep, rule in dockerignore_rules():
        if any(rule.match(prefix) for prefix in prefixes):
            excluded = not keep
    return not excluded


# --- shared readings ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def command(service: dict[str, Any]) -> list[str]:
    value = service.get("command", [])
    return shlex.split(value) if isinstance(value, str) else [str(word) for word in value]


def environment(service: dict[str, Any]) -> dict[str, str]:
    value = service.get("environment") or {}
    if isinstance(value, list):
        return dict(str(item).partition("=")[::2] for item in value)
    return {str(key): str(item) for key, item in value.items()}


def env_files(service: dict[str, Any]) -> list[Path]:
    value = service.get("env_file") or []
    entries = [value] if isinstance(value, str | dict) else value
    paths = [entry["path"] if isinstance(entry, dict) else entry for entry in entries]
    return [(DOCKER / path).resolve() for path in paths]


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> volume or host path, from the short `source:target[:mode]` form."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        found[target] = source
    return found


def published_ports(service: dict[str, Any]) -> set[int]:
    """The host ports of `[ip:]host:container[/proto]` entries."""
    ports = set()
    for entry in service.get("ports", []):
        parts = str(entry).split("/")[0].split(":")
        ports.add(int(parts[-2] if len(parts) > 1 else parts[0]))
    return ports


def workers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if command(s) == [*BOT, "run"]}


def schedulers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if command(s) == [*BOT, "scheduler"]}


def listen_port(service: dict[str, Any]) -> int:
    return int(environment(service)["LISTEN"].rpartition(":")[2])


def env_example(*, with_defaults: bool = False) -> dict[str, str]:
    """The variables set in .env.example; with the commented-out defaults too."""
    active: dict[str, str] = {}
    defaults: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            (defaults if match.group(1) else active)[match.group(2)] = match.group(3).strip()
    return {**defaults, **active} if with_defaults else active


# --- the image ----------------------------------------------------------------------------


def test_image_is_python_311_slim_in_two_stages(stages: list[Stage], final: Stage) -> None:
    assert len(stages) >= 2, "a build stage and a runtime stage"
    for stage in stages:
        assert stage.image.startswith("python:3.11-slim"), stage.image
    builders = {stage.name for stage in stages[:-1]}
    venv_copies = [c for c in final.all("COPY") if c.flags.get("from") in builders]
    assert venv_copies, "the runtime stage takes the installed environment from a build stage"


def test_dependencies_installed_pinned_by_constraints_without_dev_extras(
    stages: list[Stage],
) -> None:
    installs = [
        (stage, run)
        for stage in stages
        for run in stage.all("RUN")
        if "pip" in run.argv() and "install" in run.argv()
    ]
    assert installs, "no pip install in the Dockerfile"
    for stage, run in installs:
        words = run.argv()
        after = words[words.index("install") + 1 :]
        constraint = next(
            (after[i + 1] for i, w in enumerate(after[:-1]) if w in ("-c", "--constraint")), None
        )
        assert constraint == "constraints.txt", run.rest
        assert "." in after, f"installs the project itself: {run.rest}"
        assert not any("[dev]" in word or word.startswith("-e") for word in after), run.rest
        copied = [word for copy in stage.all("COPY") for word in copy.argv()[:-1]]
        assert "constraints.txt" in copied, "constraints.txt is copied into the build stage"


def test_runtime_stage_has_no_build_tools_and_installs_nothing_with_pip(final: Stage) -> None:
    packages = apt_packages(final)
    assert not packages & BUILD_TOOLS, packages & BUILD_TOOLS
    assert not [p for p in packages if p.endswith("-dev")], packages
    assert not [run.rest for run in final.all("RUN") if "pip" in run.argv()]


def test_runtime_stage_has_the_cjk_font_fontconfig_and_time_zones(final: Stage) -> None:
    packages = apt_packages(final)
    assert {"fonts-wqy-microhei", "fontconfig", "tzdata"} <= packages, packages
    cleanup = " ".join(run.rest for run in final.all("RUN") if "apt-get" in run.rest)
    assert "/var/lib/apt/lists" in cleanup, "apt lists are removed in the same layer"


def test_runtime_user_is_a_fixed_non_root_uid(final: Stage) -> None:
    users = final.all("USER")
    assert users, "the runtime stage never leaves root"
    user = users[-1].rest.partition(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), f"a fixed numeric uid (runAsNonRoot can check it), not {user!r}"
    created = [re.search(r"--uid[ =](\d+)", run.rest) for run in final.all("RUN")]
    assert user in {match.group(1) for match in created if match}, "the uid is created"


def test_runtime_environment(final: Stage) -> None:
    env = final.env()
    assert env.get("PYTHONUNBUFFERED") == "1", "logs reach `docker logs` at once"
    host, _, port = env.get("LISTEN", "").rpartition(":")
    assert host == "0.0.0.0" and port.isdigit(), "reachable from the other containers"
    assert str(port) in " ".join(expose.rest for expose in final.all("EXPOSE"))
    assert "/opt/venv/bin" in env.get("PATH", "")
    baked = [*env, *(arg.rest for arg in final.all("ARG"))]
    assert not [name for name in baked if re.search("TOKEN|SECRET|PASSWORD", name)]


def _repo_path(final: Stage, container_path: str) -> Path | None:
    """The project file that `COPY . <dest>` puts at container_path."""
    for copy in final.all("COPY"):
        sources, dest = copy.argv()[:-1], copy.argv()[-1].rstrip("/")
        if "from" not in copy.flags and sources == ["."] and container_path.startswith(dest):
            return PROJECT_ROOT / container_path[len(dest) :].lstrip("/")
    return None


def chowned(stage: Stage, uid: str) -> set[str]:
    """The paths a RUN in the stage gives to this uid with `chown`."""
    paths: set[str] = set()
    for run in stage.all("RUN"):
        words = run.argv()
        for start, word in enumerate(words):
            if word != "chown":
                continue
            operands = []
            for operand in words[start + 1 :]:
                if operand in SHELL_OPERATORS:
                    break
                if not operand.startswith("-"):
                    operands.append(operand)
            if operands and operands[0].partition(":")[0] == uid:
                paths.update(operands[1:])
    return paths


def test_nlu_model_is_trained_at_build_time_by_the_runtime_user(final: Stage) -> None:
    env = final.env()
    data = _repo_path(final, env["NLU_DATA_DIR"])
    assert data is not None and (data / "zh").is_dir(), "NLU_DATA_DIR is the copied nlu_data/"
    cache = env["NLU_CACHE_DIR"]
    user = final.all("USER")[-1]
    after_user = final.instructions[final.instructions.index(user) :]
    training = [
        argv
        for run in after_user
        if run.keyword == "RUN"
        for argv in bot_invocations(run.argv())
        if argv[:1] == ["nlu"]
    ]
    assert training, "a `python -m bot nlu ...` after USER trains the model into the cache"
    owned = chowned(final, user.rest.partition(":")[0])
    assert any(cache == path or cache.startswith(path.rstrip("/") + "/") for path in owned), (
        f"{cache} belongs to the runtime user, so a changed data set can be retrained"
    )


def test_healthcheck_runs_the_script_against_healthz(final: Stage) -> None:
    checks = final.all("HEALTHCHECK")
    assert len(checks) == 1
    kind, _, test = checks[0].rest.partition(" ")
    assert kind == "CMD"
    argv = json.loads(test)
    assert argv[0] == "python", "slim has no curl: the check is Python"
    script = _repo_path(final, argv[1])
    assert script == HEALTHCHECK_SCRIPT and in_build_context("docker/healthcheck.py")
    assert len(argv) == 2, "no URL argument: /healthz on LISTEN's port"
    assert {"interval", "timeout", "start-period", "retries"} <= checks[0].flags.keys()


def test_default_command_is_bot_run(final: Stage) -> None:
    assert final.all("CMD")[-1].argv() == [*BOT, "run"]


# --- the build context ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".venv/bin/python",
        ".git/config",
        ".cache/nlu/triage.pkl",
        "complaint_desk.db",
        "bot/store/old.db",
        "tests/test_cli.py",
        "docs/nlu.md",
        "nlu_results/holdout/report.json",
        "bot/__pycache__/cli.cpython-311.pyc",
        "bot/__pycache__",
        "docker/compose.yaml",
    ],
)
def test_build_context_leaves_out(path: str) -> None:
    assert not in_build_context(path)


def test_build_context_has_what_the_image_needs(stages: list[Stage]) -> None:
    needed = ["pyproject.toml", "constraints.txt", "README.md", "docker/healthcheck.py"]
    for folder in ("bot", "actions", "handoff", "nlu_data"):
        needed += [
            str(path.relative_to(PROJECT_ROOT))
            for path in (PROJECT_ROOT / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        ]
    for stage in stages:
        for copy in stage.all("COPY"):
            if "from" not in copy.flags:
                needed += [source for source in copy.argv()[:-1] if source != "."]
    for path in needed:
        assert (PROJECT_ROOT / path).exists(), f"COPY of a missing path: {path}"
        assert in_build_context(path), f"{path} is left out by .dockerignore"


def test_alembic_files_reach_the_image_if_there_are_any() -> None:
    ini = PROJECT_ROOT / "alembic.ini"
    if not ini.exists():
        return  # migrations live inside the packages, which are in the context anyway
    assert in_build_context("alembic.ini")
    location = re.search(r"^script_location\s*=\s*(\S+)", ini.read_text(), re.MULTILINE)
    if location:
        folder = location.group(1).replace("%(here)s", "").strip("/")
        assert in_build_context(folder + "/env.py"), f"{folder}/ is left out by .dockerignore"


# --- compose.yaml ----------------------------------------------------------------------------


def test_compose_has_the_production_services() -> None:
    found = services()
    assert {"postgres", "migrate", "actions", "scheduler", "proxy"} <= found.keys()
    assert workers(), "no service runs `python -m bot run`"
    for name, service in found.items():
        assert "image" in service or "build" in service, name


def test_bot_services_are_built_from_the_dockerfile() -> None:
    for name, service in services().items():
        if command(service)[:2] == ["python", "-m"]:
            build = service["build"]
            assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE, name


def test_every_long_running_service_has_a_health_check_and_a_restart_policy() -> None:
    for name, service in services().items():
        if service.get("restart") == "no":
            assert name == "migrate", f"{name} is not a one-shot job"
            continue
        assert service.get("restart") in ("always", "unless-stopped"), name
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_workers_take_webhooks_and_never_run_the_scheduler() -> None:
    for name, service in workers().items():
        env = environment(service)
        assert env.get("RUN_SCHEDULER", "").lower() in FALSE, name
        assert env["LISTEN"].rpartition(":")[0] == "0.0.0.0", name
        assert (PROJECT_ROOT / ".env").resolve() in env_files(service), f"{name}: WEBHOOK_URL"
    example = env_example()
    assert urlsplit(example["WEBHOOK_URL"]).scheme == "https", "Telegram posts to https only"
    replicas = sum(int(s.get("deploy", {}).get("replicas", 1)) for s in workers().values())
    assert replicas >= 2, "two webhook workers"


def test_exactly_one_scheduler() -> None:
    found = schedulers()
    assert len(found) == 1, f"one scheduler service, not {sorted(found)}"
    (service,) = found.values()
    assert int(service.get("deploy", {}).get("replicas", 1)) == 1
    assert environment(service).get("RUN_SCHEDULER", "").lower() in TRUE


def test_start_order_is_declared_with_conditions() -> None:
    found = services()
    for name, service in found.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in found, f"{name} depends on a missing {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert found[target].get("healthcheck", {}).get("test"), target
            elif condition == "service_completed_successfully":
                assert found[target].get("restart") == "no", f"{target} is a one-shot"
            else:
                assert condition == "service_started", condition

    def condition(service: str, target: str) -> str:
        return str(found[service].get("depends_on", {}).get(target, {}).get("condition"))

    assert condition("migrate", "postgres") == "service_healthy"
    for name in [*workers(), *schedulers()]:
        assert condition(name, "migrate") == "service_completed_successfully", name
        assert condition(name, "postgres") == "service_healthy", name
    for name in workers():
        assert condition(name, "actions") == "service_healthy", name
        assert condition("proxy", name) == "service_healthy"


def test_postgres_keeps_its_data_in_a_named_volume_and_is_not_published() -> None:
    postgres = services()["postgres"]
    assert str(postgres["image"]).startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = mounts(postgres)["/var/lib/postgresql/data"]
    assert volume in (compose().get("volumes") or {}), "a named volume, not a host folder"
    assert not postgres.get("ports"), "the database is reachable from the compose network only"


def test_the_action_server_is_where_the_bot_looks_for_it() -> None:
    from rasa_sdk.endpoint import create_argument_parser

    found = services()
    for name, service in [*workers().items(), *schedulers().items()]:
        url = urlsplit(environment(service)["ACTION_SERVER_URL"])
        assert url.path == "/webhook", "bot/dialogue/actions_client.py posts to /webhook"
        server = found[str(url.hostname)]
        argv = command(server)
        assert argv[:3] == ["python", "-m", "rasa_sdk"], f"{name}: {url.hostname}"
        args = create_argument_parser().parse_args(argv[3:])
        assert args.actions == "actions" and int(args.port) == url.port
        health = urlsplit(server["healthcheck"]["test"][-1])
        assert (health.port, health.path) == (url.port, "/health"), "rasa-sdk serves /health"


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def test_compose_holds_no_secrets_and_no_interpolation() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"\d{5,16}:[A-Za-z0-9_-]{30,}", text), "a bot token"
    assert not re.search(r"://[^/\s:@]+:[^@\s/]+@", text), "credentials in a URL"
    for value in _strings(compose()):
        assert "$" not in value.replace("$$", ""), f"interpolation reads docker/.env: {value}"
    for name, service in services().items():
        for key in environment(service):
            assert not re.search("TOKEN|SECRET|PASSWORD|DATABASE_URL", key), f"{name}: {key}"


def test_compose_variables_are_settings_the_bot_reads() -> None:
    for name, service in services().items():
        unknown = set(environment(service)) - SETTINGS_NAMES - NON_BOT_VARIABLES
        assert not unknown, f"{name}: {sorted(unknown)}"
        for path in env_files(service):
            assert path == (PROJECT_ROOT / ".env").resolve(), f"{name}: {path}"


# --- the proxy ----------------------------------------------------------------------------


def test_proxy_serves_the_domain_over_every_worker_port() -> None:
    proxy = services()["proxy"]
    assert (DOCKER / mounts(proxy)["/etc/caddy/Caddyfile"]).resolve() == CADDYFILE
    assert 443 in published_ports(proxy), "Telegram posts to 443"
    caddyfile = CADDYFILE.read_text(encoding="utf-8")
    assert re.search(r"^\{\$DOMAIN\}\s*\{", caddyfile, re.MULTILINE), "the site is DOMAIN"
    upstreams = re.findall(r"^\s*dynamic a (\S+) (\d+)", caddyfile, re.MULTILINE)
    assert upstreams, "the proxy balances over the worker service's addresses"
    for service_name, port in upstreams:
        assert service_name in workers(), service_name
        assert int(port) == listen_port(workers()[service_name])


def test_proxy_keeps_metrics_and_health_inside() -> None:
    caddyfile = CADDYFILE.read_text(encoding="utf-8")
    matcher = re.search(r"^\s*@(\S+) path (.+)$", caddyfile, re.MULTILINE)
    assert matcher and {"/metrics", "/healthz"} <= set(matcher.group(2).split())
    assert re.search(rf"^\s*respond @{matcher.group(1)} 40[34]\s*$", caddyfile, re.MULTILINE)


def test_webhook_url_is_the_proxied_domain() -> None:
    example = env_example()
    url = urlsplit(example["WEBHOOK_URL"])
    assert url.hostname == example["DOMAIN"]
    assert (url.port or 443) in TELEGRAM_WEBHOOK_PORTS


# --- .env.example -----------------------------------------------------------------------------


def test_env_example_names_every_setting_and_nothing_else() -> None:
    names = set(env_example(with_defaults=True))
    assert SETTINGS_NAMES - names == set(), "settings .env.example does not mention"
    assert names - SETTINGS_NAMES - NON_BOT_VARIABLES == set(), "names the bot does not read"


def test_env_example_values_pass_the_bots_validation() -> None:
    """Once the operator has filled in the secrets, every value given is one the bot takes."""
    secrets = {"TELEGRAM_BOT_TOKEN": GOOD_TOKEN, "WEBHOOK_SECRET": "a" * 32}
    for values in (env_example(), env_example(with_defaults=True)):
        fields = {k.lower(): v for k, v in {**values, **secrets}.items() if k in SETTINGS_NAMES}
        Settings(_env_file=None, **fields)


def test_env_example_ships_no_secrets() -> None:
    example = env_example()
    for name in SECRETS:
        assert example.get(name, "") == "", f"{name} is left for the operator"
    password = make_url(example["DATABASE_URL"]).password
    assert password and re.fullmatch(r"<[A-Z_]+>", password), "a placeholder, not a password"


def test_database_url_matches_the_postgres_service() -> None:
    example = env_example()
    url = make_url(example["DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg"
    assert url.host in services() and url.host == "postgres"
    assert url.username == example["POSTGRES_USER"]
    assert url.database == example["POSTGRES_DB"]
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("psycopg") for dep in project["dependencies"]), "the driver"


def test_readme_configuration_table_matches_env_example() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for row in section.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }
    assert documented, "no table found"
    assert documented - SETTINGS_NAMES == set(), "the README names settings that do not exist"
    assert documented - set(env_example(with_defaults=True)) == set()


def test_non_bot_variables_are_documented() -> None:
    guide = (DOCKER / "README.md").read_text(encoding="utf-8")
    for name in NON_BOT_VARIABLES:
        assert f"`{name}`" in guide, name


# --- every `python -m bot <command>` is one the CLI has -------------------------------------


def _all_bot_invocations() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for stage in parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")):
        for instruction in stage.instructions:
            if instruction.keyword in ("RUN", "CMD", "ENTRYPOINT"):
                found += [("Dockerfile", a) for a in bot_invocations(instruction.argv())]
    for name, service in services().items():
        found += [(f"compose {name}", a) for a in bot_invocations(command(service))]
    guide = (DOCKER / "README.md").read_text(encoding="utf-8")
    for mention in re.finditer(r"python -m bot((?: [^\s`|#\\]+)*)", guide):
        if mention[1]:  # a bare `python -m bot` in prose names no command
            found += [("docker/README.md", mention[1].split())]
    unique = {(where, tuple(argv)): argv for where, argv in found}
    return [(where, argv) for (where, _), argv in unique.items()]


@pytest.mark.parametrize(
    ("where", "argv"),
    _all_bot_invocations(),
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_bot_command_exists_in_the_cli(where: str, argv: list[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: `python -m bot {shlex.join(argv)}` is not a command of bot/cli.py")


def test_the_deployment_uses_run_scheduler_and_migrate() -> None:
    used = {tuple(argv[:1]) for _, argv in _all_bot_invocations()}
    assert {("run",), ("scheduler",), ("migrate",)} <= used


# --- the health check script, run for real against a local server ---------------------------


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _healthcheck(*args: str, listen: str) -> int:
    env = {"LISTEN": listen, "PATH": "/usr/bin:/bin", "http_proxy": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT), *args], env=env, capture_output=True, timeout=30
    )
    return done.returncode


def test_healthcheck_passes_on_healthz_from_listen(health_server: int) -> None:
    assert _healthcheck(listen=f"0.0.0.0:{health_server}") == 0


def test_healthcheck_fails_on_an_error_status(health_server: int) -> None:
    url = f"http://127.0.0.1:{health_server}/down"
    assert _healthcheck(url, listen=f"0.0.0.0:{health_server}") == 1


def test_healthcheck_fails_when_nothing_listens() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Health) as closed:
        port = closed.server_address[1]
    assert _healthcheck(listen=f"0.0.0.0:{port}") == 1
