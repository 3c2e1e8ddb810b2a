"""Acknowledgements: which ones a sender asked for (MSH-15/16), and rendering them.

HL7 v2 acknowledgement modes:

* **original mode** — MSH-15 and MSH-16 both empty: one application acknowledgement,
  MSA-1 ``AA`` (accepted), ``AE`` (error: try again later) or ``AR`` (rejected: do not
  resend as is), always sent;
* **enhanced mode** — MSH-15 or MSH-16 valued. The accept (commit) acknowledgement
  ``CA``/``CE``/``CR`` is sent per MSH-15: ``AL`` (or empty) always, ``ER`` only on CE/CR,
  ``SU`` only on CA, ``NE`` never. An application acknowledgement ``AA``/``AE``/``AR`` is sent
  per MSH-16 the same way, but only when the listener translated the message itself
  (sink ``ledger``): with the Kafka sink the application outcome is not known while the
  connection waits, and the listener only commits to having handed the message on.

``CE``/``AE`` mean "not handed on, send again" (Kafka or PostgreSQL unavailable);
``CR``/``AR`` mean "this message will never be accepted" (unparseable, dead-lettered), with
an ERR segment naming the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import hl7

from consumers.hl7.view import MessageView, Segment

_FALLBACK = "MSH|^~\\&|"

#: HL7 table 0357 codes used in ERR-3.
ERROR_CODES = {"unparseable": ("100", "Segment sequence error"),
               "unsupported_profile": ("200", "Unsupported message type"),
               "profile_mismatch": ("200", "Unsupported message type"),
               "retry": ("207", "Application internal error")}


@dataclass(frozen=True)
class Verdict:
    """What became of a message: ``accepted``, ``error`` (retry) or ``rejected``."""

    status: str
    detail: str = ""
    code: str = "retry"
    #: True when the message was translated and appended (an application outcome is known).
    applied: bool = False


def _wanted(kind: str, status: str) -> bool:
    return {"AL": True, "ER": status != "accepted", "SU": status == "accepted"}.get(kind, False)


def plan(msh: Segment | None, verdict: Verdict) -> list[str]:
    """MSA-1 codes to send, in order (possibly none)."""
    letter = {"accepted": "A", "error": "E", "rejected": "R"}[verdict.status]
    if msh is None:
        return ["A" + letter]
    accept, application = msh.get(15).upper(), msh.get(16).upper()
    if not accept and not application:
        return ["A" + letter]
    codes = []
    # An empty MSH-15 in enhanced mode is read as AL: a needless ACK costs nothing, a
    # missing one leaves a sender waiting on its connection.
    if _wanted(accept or "AL", verdict.status):
        codes.append("C" + letter)
    if verdict.applied and _wanted(application, verdict.status):
        codes.append("A" + letter)
    return codes


def _dtm(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + moment.strftime("%z")


def render(
    received: MessageView | None,
    code: str,
    *,
    control_id: str,
    now: datetime | None = None,
    verdict: Verdict | None = None,
) -> str:
    """The ACK for ``received`` (or for an unreadable message when ``None``), CR-separated."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    base = hl7.parse(_FALLBACK)  # the ACK always uses the standard separators
    msh = received.first("MSH") if received is not None else None

    def esc(text: str) -> str:
        return str(base.escape(text)) if text else ""

    def hd(number: int) -> str:
        """An HD field of the received MSH, trimmed and re-escaped (``^ 0009… ^`` fixed)."""
        if msh is None:
            return ""
        comps = [msh.get(number, c) for c in range(1, len(msh.comps(number)) + 1)]
        return "^".join(esc(c) for c in comps).rstrip("^")

    trigger = msh.get(9, 2) if msh is not None else ""
    fields = [
        "MSH", "^~\\&", hd(5) or "INFUSION_LEDGER", hd(6), hd(3), hd(4), _dtm(moment), "",
        f"ACK^{esc(trigger)}^ACK" if trigger else "ACK", esc(control_id),
        esc(msh.get(11, 1)) if msh is not None and msh.get(11, 1) else "P",
        esc(msh.get(12, 1)) if msh is not None and msh.get(12, 1) else "2.6",
    ]
    acked = esc(msh.get(10)) if msh is not None else ""
    segments = ["|".join(fields[:1]) + "|" + "|".join(fields[1:]), f"MSA|{code}|{acked}"]
    if verdict is not None and verdict.status != "accepted":
        number, name = ERROR_CODES.get(verdict.code, ("207", "Application internal error"))
        severity = "E"
        segments.append(f"ERR|||{number}^{name}^HL70357|{severity}||||{esc(verdict.detail[:200])}")
    return "\r".join(segments)
