"""``closedloop queueserver``: start a local bluesky-queueserver (Redis, 0MQ document proxy, RE Manager).

:class:`LocalQueueServer` starts the three processes on loopback ports for a startup folder (by default the one
the project ships, ``simulators/qserver``; or a copy of bluesky-queueserver's own simulated profile), waits until
the manager's worker environment is open, and ends every process it started when it stops (each runs in its own
process group, ended by its id). The system tests and the
queueserver benchmark use it as well as the command.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer

from agent.cli.exits import fail
from closedloop.errors import ExitCode, InstrumentError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="A local bluesky-queueserver for closedloop.")

HOST = "127.0.0.1"
PUBLISH_ENV = "CLOSEDLOOP_QSERVER_PUBLISH"
NOISE_ENV = "CLOSEDLOOP_QSERVER_NOISE"
EXPOSURE_ENV = "CLOSEDLOOP_QSERVER_EXPOSURE"
TILED_ENV = "CLOSEDLOOP_QSERVER_TILED"


def bundled_startup_dir() -> Path:
    """The startup folder shipped with the project (``simulators/qserver``), located without importing it."""
    found = importlib.util.find_spec("simulators")
    if found is None or not found.submodule_search_locations:
        raise InstrumentError("queueserver: the 'simulators' package is not installed (it holds the startup folder)")
    return Path(next(iter(found.submodule_search_locations))) / "qserver"


PUBLISHER_FILE = "06-closedloop-publish.py"
_PUBLISHER = f'''"""Added by closedloop to a copy of a startup profile: the RunEngine publishes its documents,
as JSON, to the 0MQ proxy at ${PUBLISH_ENV} (the one thing closedloop needs of a beamline's profile)."""
import json as _json
import os as _os

from bluesky.callbacks.zmq import Publisher as _Publisher


def _closedloop_plain(value):
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _closedloop_json(document):
    return _json.dumps(document, default=_closedloop_plain).encode()


if _os.environ.get("{PUBLISH_ENV}"):
    RE.subscribe(_Publisher(_os.environ["{PUBLISH_ENV}"], serializer=_closedloop_json))
'''


def stock_startup_dir(into: Path) -> Path:
    """A copy, in ``into``, of bluesky-queueserver's own simulated profile (``profile_collection_sim``: ophyd.sim's
    ``motor1``, ``motor2``, ``det4``...) with one file added that publishes the RunEngine's documents as JSON to
    the proxy named by ``CLOSEDLOOP_QSERVER_PUBLISH``.

    Raises:
        InstrumentError: bluesky-queueserver is not installed.
    """
    found = importlib.util.find_spec("bluesky_queueserver")
    if found is None or not found.submodule_search_locations:
        raise InstrumentError(
            "queueserver: bluesky-queueserver is not installed", "pip install 'closedloop[queueserver]'"
        )
    source = Path(next(iter(found.submodule_search_locations))) / "profile_collection_sim"
    target = into / "profile_collection_sim"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "existing_plans_and_devices.yaml"))
    (target / PUBLISHER_FILE).write_text(_PUBLISHER)
    return target


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass
class QueueServerAddresses:
    """Where the local queueserver's parts listen.

    Attributes:
        control: the RE Manager's 0MQ control address (``queueserver.control_address``).
        info: the RE Manager's console-output address (``qserver-console-monitor``).
        documents: the document proxy's out-address (``queueserver.documents_address``).
        publish: the document proxy's in-address, where the profile's RunEngine publishes.
        redis: the Redis server the manager keeps its queue in (``host:port``).
    """

    control: str
    info: str
    documents: str
    publish: str
    redis: str


class LocalQueueServer:
    """Redis (unless one is given), ``bluesky-0MQ-proxy`` and ``start-re-manager``, as one context manager.

    Args:
        startup_dir: the manager's startup folder; default: the bundled one (``stock``: bluesky-queueserver's own
            simulated profile, see :func:`stock_startup_dir`).
        redis: ``host:port`` of a running Redis; default: start ``redis-server`` on a free port (no persistence).
        control_port, info_port, proxy_in_port, proxy_out_port: loopback ports; default: free ones.
        noise: the bundled profile's detector noise in counts (``CLOSEDLOOP_QSERVER_NOISE``).
        exposure: the bundled profile's seconds per reading (``CLOSEDLOOP_QSERVER_EXPOSURE``).
        tiled: the Tiled server the bundled profile writes every run to (``CLOSEDLOOP_QSERVER_TILED``; its key in
            ``TILED_API_KEY``, taken from this process's environment); None: not written to Tiled.
        start_timeout: seconds for every process to come up and the worker environment to open.
    """

    def __init__(
        self,
        startup_dir: Path | str | None = None,
        redis: str | None = None,
        control_port: int | None = None,
        info_port: int | None = None,
        proxy_in_port: int | None = None,
        proxy_out_port: int | None = None,
        noise: float = 10.0,
        exposure: float = 0.0,
        start_timeout: float = 60.0,
        tiled: str | None = None,
    ) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="closedloop-qserver-"))
        if startup_dir == "stock":
            self.startup_dir = stock_startup_dir(self.workdir)
        else:
            self.startup_dir = Path(startup_dir) if startup_dir else bundled_startup_dir()
        self.noise = noise
        self.exposure = exposure
        self.tiled = tiled
        self.start_timeout = start_timeout
        self._redis = redis.removeprefix("redis://").rstrip("/") if redis else None
        ports = [port or free_port() for port in (control_port, info_port, proxy_in_port, proxy_out_port)]
        self.addresses = QueueServerAddresses(
            control=f"tcp://{HOST}:{ports[0]}",
            info=f"tcp://{HOST}:{ports[1]}",
            publish=f"tcp://{HOST}:{ports[2]}",
            documents=f"tcp://{HOST}:{ports[3]}",
            redis=self._redis or f"{HOST}:{free_port()}",
        )

    def __enter__(self) -> LocalQueueServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> QueueServerAddresses:
        """Start every process and wait until the manager's worker environment is open.

        Raises:
            InstrumentError: a program is missing, a process exited, or the manager did not come up in time;
                whatever had started is stopped again.
        """
        if not (self.startup_dir / "user_group_permissions.yaml").is_file():
            raise InstrumentError(f"queueserver: {self.startup_dir} has no user_group_permissions.yaml")
        bound = {"control": self.addresses.control, "info": self.addresses.info}
        bound.update({"proxy in": self.addresses.publish, "proxy out": self.addresses.documents})
        if self._redis is None:
            bound["redis"] = self.addresses.redis
        for role, address in bound.items():
            port = int(address.rpartition(":")[2])
            if not _port_free(port):
                raise InstrumentError(f"queueserver: the {role} port {port} is in use", "choose another port")
        try:
            if self._redis is None:
                redis_port = self.addresses.redis.rpartition(":")[2]
                self._spawn(
                    "redis", ["redis-server", "--port", redis_port, "--bind", HOST, "--save", "", "--appendonly", "no"]
                )
            self._wait_for_redis()
            proxy = [_program("bluesky-0MQ-proxy"), "--in-address", self.addresses.publish]
            self._spawn("proxy", [*proxy, "--out-address", self.addresses.documents])  # loopback only
            env = {PUBLISH_ENV: self.addresses.publish, NOISE_ENV: str(self.noise), EXPOSURE_ENV: str(self.exposure)}
            env.update({TILED_ENV: self.tiled} if self.tiled else {})
            self._spawn("manager", self._manager_command(), env)
            self._open_environment()
        except BaseException:
            self.stop()
            raise
        return self.addresses

    def stop(self) -> None:
        """End every process this object started (its whole process group), newest first; remove the work folder."""
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            for sent in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(process.pid, sent)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines a process wrote (stdout and stderr), for error messages."""
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _manager_command(self) -> list[str]:
        return [
            _program("start-re-manager"),
            "--startup-dir", str(self.startup_dir),
            "--existing-plans-devices", str(self.workdir / "existing_plans_and_devices.yaml"),
            "--user-group-permissions", str(self.startup_dir / "user_group_permissions.yaml"),
            "--redis-addr", self.addresses.redis,
            "--zmq-control-addr", self.addresses.control,
            "--zmq-info-addr", self.addresses.info,
            "--zmq-publish-console", "ON",
        ]  # fmt: skip

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        if shutil.which(command[0]) is None:
            hint = "apt-get install redis-server" if name == "redis" else "pip install 'closedloop[queueserver]'"
            raise InstrumentError(f"queueserver: '{command[0]}' is not installed", hint)
        with (self.workdir / f"{name}.log").open("wb") as log:  # the child keeps its own copy of the file
            self.processes[name] = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # its own process group: stop() ends its children (the RE worker) too
            )

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise InstrumentError(
                    f"queueserver: {name} exited with code {process.returncode}: {self.log_tail(name, 1)}"
                )

    def _wait_for_redis(self) -> None:
        host, _, port = self.addresses.redis.rpartition(":")
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with socket.create_connection((host or HOST, int(port)), timeout=1.0) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            self._check_alive()
            if time.monotonic() > deadline:
                raise InstrumentError(f"queueserver: no Redis answered at {self.addresses.redis}")
            time.sleep(0.05)

    def _open_environment(self) -> None:
        from bluesky_queueserver_api.zmq import REManagerAPI

        from instruments.queueserver import close_api

        api = REManagerAPI(zmq_control_addr=self.addresses.control, timeout_recv=1.0, request_fail_exceptions=False)
        deadline = time.monotonic() + self.start_timeout
        try:
            opened = False
            while True:
                self._check_alive()
                try:
                    status = api.status(reload=True)
                except api.RequestTimeoutError:
                    status = None
                if status is not None and status["worker_environment_exists"] and status["manager_state"] == "idle":
                    return
                if status is not None and not opened and status["manager_state"] == "idle":
                    opened = bool(api.environment_open()["success"])
                if time.monotonic() > deadline:
                    raise InstrumentError(
                        f"queueserver: the RE Manager's environment did not open in {self.start_timeout:g} s: "
                        f"{self.log_tail('manager', 1)}"
                    )
                time.sleep(0.1)
        finally:
            close_api(api)


def _program(name: str) -> str:
    """A console script of this Python environment (next to its interpreter), else one on ``PATH``."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def session_snippet(addresses: QueueServerAddresses, detector: str = "det") -> str:
    """The ``instrument:`` section of a session file that uses this queueserver (``det4`` on the stock profile)."""
    return (
        "instrument:\n"
        "  queueserver:\n"
        f"    control_address: {addresses.control}\n"
        f"    documents_address: {addresses.documents}\n"
        f"    detectors: [{detector}]\n"
    )


@app.callback()
def _group() -> None:
    """A local bluesky-queueserver for closedloop."""


@app.command()
def start(
    redis: Annotated[
        str | None, typer.Option(help="host:port of a running Redis (default: start redis-server)")
    ] = None,
    control_port: Annotated[int, typer.Option(help="the RE Manager's control port")] = 60615,
    info_port: Annotated[int, typer.Option(help="the RE Manager's console-output port")] = 60625,
    proxy_in_port: Annotated[int, typer.Option(help="the document proxy's in-port (RunEngine publishes)")] = 5567,
    proxy_out_port: Annotated[int, typer.Option(help="the document proxy's out-port (subscribers)")] = 5568,
    startup_dir: Annotated[Path | None, typer.Option(help="startup folder (default: the bundled simulator)")] = None,
    stock_profile: Annotated[
        bool, typer.Option(help="use bluesky-queueserver's own simulated profile (motor1, motor2, det4...)")
    ] = False,
    noise: Annotated[float, typer.Option(help="the bundled detector's noise, counts")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the addresses as one JSON line")] = False,
) -> None:
    """Start Redis (unless --redis), bluesky-0MQ-proxy and start-re-manager; run until Ctrl-C, then end them all.

    Exit codes: 0 after Ctrl-C (or SIGTERM), 1 when a process fails to start or exits, 2 for a bad --startup-dir.
    """
    if startup_dir is not None and not (startup_dir / "user_group_permissions.yaml").is_file():
        raise fail(f"--startup-dir: {startup_dir} has no user_group_permissions.yaml", ExitCode.BAD_INPUT)
    if stock_profile and startup_dir is not None:
        raise fail("--stock-profile: give it or --startup-dir, not both", ExitCode.BAD_INPUT)
    chosen: Path | str | None = "stock" if stock_profile else startup_dir
    server = LocalQueueServer(chosen, redis, control_port, info_port, proxy_in_port, proxy_out_port, noise)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        try:
            addresses = server.start()
        except InstrumentError as exc:
            raise fail(str(exc), exc.exit_code) from None
        pids = {name: process.pid for name, process in server.processes.items()}
        if as_json:
            typer.echo(json.dumps({**asdict(addresses), "pids": pids}), nl=True)
        else:
            for name, address in asdict(addresses).items():
                typer.echo(f"{name:>9}: {address}")
            snippet = session_snippet(addresses, "det4" if stock_profile else "det")
            typer.echo(f"\nA session file's instrument section for it:\n{snippet}")
            typer.echo("Running; Ctrl-C ends every process started here.")
        sys.stdout.flush()
        while all(process.poll() is None for process in server.processes.values()):
            time.sleep(0.5)
        raise fail("a queueserver process exited; stopping the others", ExitCode.FAILED)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    app()
