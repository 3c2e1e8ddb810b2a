"""Running the ``ledger`` console script as a subprocess, the way operators run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from ledger.store.database import ConnectionParams


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> Any:
        """The machine-readable last line of stdout."""
        return json.loads(self.stdout.strip().splitlines()[-1])


def ledger(
    *args: str, database: ConnectionParams | None = None, env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    if database is not None:
        environment["LEDGER_DATABASE_URL"] = database.url()
    environment.update(env or {})
    completed = subprocess.run(
        [sys.executable, "-m", "ledger_cli.main", *args], capture_output=True, text=True,
        env=environment, timeout=timeout, check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)
