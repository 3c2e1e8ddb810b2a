"""Which translator a message goes to: MSH-21 profile OIDs first, then MSH-9.

PCD-01 and device-status messages share ``ORU^R01``, and gateways send ORU^R01 with the
IPEC OID, so the profile OID decides. The rules (each outcome noted or dead-lettered):

1. Acknowledgements (``ACK^*``) need no profile: they are read, never translated into
   clinical events.
2. Every MSH-21 repetition's EI-3 (and an OID sent in EI-1) is looked up in the allow-list
   (:class:`~consumers.hl7.config.Hl7Config`). One allow-listed transaction → it, provided
   MSH-9 is a message type of that transaction (else ``profile_mismatch``).
3. OIDs present but none allow-listed → ``unsupported_profile`` (a known other PCD profile
   is named; an unknown OID is named so an operator can allow-list it).
4. No OID at all (the PIV examples send only ``IHE_PCD_PIV_001``) → routed on MSH-9 and
   noted, unless ``hl7_require_profile_oid`` is set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from consumers.hl7.config import (
    KNOWN_UNSUPPORTED_OIDS,
    PCD01,
    PCD03,
    PCD04,
    PCD10,
    Hl7Config,
)
from consumers.hl7.errors import ProfileMismatch, UnsupportedProfile, Untranslatable
from consumers.hl7.view import Segment

_OID = re.compile(r"[0-2](?:\.\d+)+")

#: (MSH-9.1, MSH-9.2) → (transaction, handler).
BY_TYPE: dict[tuple[str, str], tuple[str, str]] = {
    ("ORU", "R01"): (PCD01, "pcd01"),
    ("ORU", "R42"): (PCD10, "pcd10"),
    ("ORU", "R40"): (PCD04, "pcd04"),
    ("RGV", "O15"): (PCD03, "pcd03_request"),
    ("RRG", "O16"): (PCD03, "pcd03_reply"),
}
#: Message types each transaction may arrive as, and the handler for each.
COMPATIBLE: dict[str, dict[tuple[str, str], str]] = {
    PCD01: {("ORU", "R01"): "pcd01"},
    # IPEC is ORU^R42^ORU_R01; some gateways send it as ORU^R01 with the IPEC OID.
    PCD10: {("ORU", "R42"): "pcd10", ("ORU", "R01"): "pcd10"},
    PCD04: {("ORU", "R40"): "pcd04"},
    PCD03: {("RGV", "O15"): "pcd03_request", ("RRG", "O16"): "pcd03_reply"},
}
#: Other message types of PCD profiles: recognised, not translated.
OTHER_PCD_TYPES = {("ORA", "R41"): "PCD-05 (alert dissemination status)"}


@dataclass(frozen=True)
class Route:
    transaction: str | None
    handler: str
    message_type: str


def profile_oids(msh: Segment) -> list[str]:
    """OIDs named in MSH-21 (EI-3 of each repetition, or an OID sent in EI-1)."""
    oids = []
    for rep in range(1, len(msh.reps(21)) + 1):
        for component in (3, 1):
            value = msh.get(21, component, rep=rep).replace(" ", "")
            if _OID.fullmatch(value):
                oids.append(value)
                break
    return list(dict.fromkeys(oids))


def route(msh: Segment, config: Hl7Config, notes: list[str]) -> Route:
    code, trigger = msh.get(9, 1).upper(), msh.get(9, 2).upper()
    message_type = f"{code}^{trigger}" if trigger else code
    if not code:
        raise Untranslatable("MSH-9 (message type) is empty")
    if code == "ACK":
        return Route(PCD03 if trigger == "O15" else None, "ack", message_type)
    oids = profile_oids(msh)
    allowed = {t for oid in oids if (t := config.transaction_of(oid)) is not None}
    if len(allowed) > 1:
        raise ProfileMismatch(f"MSH-21 names several transactions: {sorted(allowed)}")
    if allowed:
        transaction = allowed.pop()
        handler = COMPATIBLE[transaction].get((code, trigger))
        if handler is None:
            raise ProfileMismatch(
                f"MSH-21 names {transaction} but MSH-9 is {message_type}: refusing to guess"
            )
        if (code, trigger) != next(iter(COMPATIBLE[transaction])) and handler == "pcd10":
            notes.append(f"{message_type} with the {transaction} profile OID: read as such")
        return Route(transaction, handler, message_type)
    known = [f"{o} = {KNOWN_UNSUPPORTED_OIDS[o]}" for o in oids if o in KNOWN_UNSUPPORTED_OIDS]
    if known:
        raise UnsupportedProfile(f"unsupported profile: {'; '.join(known)}")
    if oids:
        raise UnsupportedProfile(
            f"unsupported profile: MSH-21 OID(s) {', '.join(oids)} not in the allow-list "
            "(LEDGER_HL7_PROFILE_OIDS)"
        )
    if (code, trigger) in OTHER_PCD_TYPES:
        raise UnsupportedProfile(f"unsupported profile: {OTHER_PCD_TYPES[(code, trigger)]}")
    if (code, trigger) not in BY_TYPE:
        raise UnsupportedProfile(
            f"unsupported profile: {message_type} is not an IHE PCD message the ledger translates"
        )
    if config.require_profile_oid:
        raise UnsupportedProfile(
            "unsupported profile: MSH-21 names no profile OID and hl7_require_profile_oid is set"
        )
    transaction, handler = BY_TYPE[(code, trigger)]
    notes.append(f"MSH-21 names no profile OID: routed on MSH-9 {message_type} as {transaction}")
    return Route(transaction, handler, message_type)
