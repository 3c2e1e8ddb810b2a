"""Checkpoints during ``ledger verify``: recomputed as their ranges close, and compared with
an exported copy (the auditor's outside record)."""

from __future__ import annotations

from ledger.store.checkpoints import CHECKPOINT_GENESIS, Checkpoint
from ledger.store.merkle import merkle_root
from ledger.store.verify_report import Problem, VerifyReport

_NEVER = 2**63  # above any bigserial: "no checkpoint boundary ahead"


class CheckpointWalker:
    """Collects event hashes per checkpoint range while the main pass walks the events.

    ``boundary`` is the last notification id of the checkpoint being filled; once every
    checkpoint is closed, ``anchoring`` is false (later events are not yet anchored) and the
    boundary is unreachable. The hot loop appends to ``leaves`` and ``heads`` directly and
    calls ``close_through`` when it passes the boundary.
    """

    def __init__(self, checkpoints: list[Checkpoint], report: VerifyReport):
        self.pending = list(reversed(checkpoints))
        self.report = report
        self.leaves: list[bytes] = []
        self.heads: dict[str, tuple[int, bytes]] = {}
        self.previous_hash = CHECKPOINT_GENESIS
        self.previous_last = 0
        self.boundary = 0
        self.anchoring = False
        self._next_range()

    def _next_range(self) -> None:
        self.anchoring = bool(self.pending)
        self.boundary = self.pending[-1].last_notification_id if self.pending else _NEVER

    def close_through(self, position: int) -> None:
        while self.pending and position > self.pending[-1].last_notification_id:
            self._close(self.pending.pop())
        self._next_range()

    def finish(self) -> None:
        while self.pending:
            self._close(self.pending.pop())
        self._next_range()

    def _close(self, checkpoint: Checkpoint) -> None:
        problems = []
        if checkpoint.after_notification_id != self.previous_last:
            problems.append("its range does not start where the previous checkpoint ended")
        if checkpoint.previous_hash != self.previous_hash:
            problems.append("it does not chain to the previous checkpoint")
        if checkpoint.computed_hash() != checkpoint.checkpoint_hash:
            problems.append("its own hash does not match its content")
        if len(self.leaves) != checkpoint.event_count:
            problems.append(
                f"it covers {checkpoint.event_count} events, the database has {len(self.leaves)}"
            )
        if merkle_root(self.leaves) != checkpoint.merkle_root:
            problems.append("the Merkle root of the events in its range differs")
        heads = {stream: {"version": version, "hash": digest.hex()}
                 for stream, (version, digest) in self.heads.items()}
        if heads != checkpoint.heads:
            problems.append("the stream heads in its range differ")
        for text in problems:
            self.report.problems.append(
                Problem("checkpoint_mismatch", f"checkpoint {checkpoint.checkpoint_id}: {text}",
                        notification_id=checkpoint.last_notification_id)
            )
        self.previous_hash = checkpoint.checkpoint_hash
        self.previous_last = checkpoint.last_notification_id
        # New containers, not clear(): the hot loop re-reads them after every close.
        self.leaves = []
        self.heads = {}


def compare_with_export(
    stored: list[Checkpoint], exported: list[Checkpoint], report: VerifyReport
) -> None:
    by_id = {c.checkpoint_id: c for c in stored}
    for outside in exported:
        inside = by_id.get(outside.checkpoint_id)
        if inside is None:
            report.problems.append(
                Problem("checkpoint_missing",
                        f"checkpoint {outside.checkpoint_id} of the exported file is not in the"
                        f" database", notification_id=outside.last_notification_id)
            )
            _name_streams(outside, None, report)
        elif inside.checkpoint_hash != outside.checkpoint_hash:
            report.problems.append(
                Problem("checkpoint_rewritten",
                        f"checkpoint {outside.checkpoint_id} differs from the exported file",
                        notification_id=outside.last_notification_id)
            )
            _name_streams(outside, inside, report)


def _name_streams(outside: Checkpoint, inside: Checkpoint | None, report: VerifyReport) -> None:
    """Point at the streams whose heads the exported checkpoint knew otherwise."""
    inside_heads = inside.heads if inside else {}
    for stream, head in sorted(outside.heads.items()):
        if inside_heads.get(stream) != head:
            now = inside_heads.get(stream)
            report.problems.append(
                Problem("stream_differs_from_export",
                        f"exported checkpoint {outside.checkpoint_id} records version"
                        f" {head['version']} (hash {head['hash'][:16]}…); database has"
                        f" {('version ' + str(now['version'])) if now else 'no such head'}",
                        stream, head["version"], outside.last_notification_id)
            )
