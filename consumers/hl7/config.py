"""What the HL7 edge needs to know: the profile allow-list, clocks, and identity defaults.

Built from :class:`ledger.settings.LedgerSettings` in the composition root (``ledger_cli``)
and passed in; nothing here reads the environment.

The profile allow-list maps each supported IHE PCD transaction to the MSH-21 profile OIDs
accepted for it (EI-3 of any MSH-21 repetition). Real messages differ from the Technical
Framework, and the TF's own examples use two OIDs for PCD-04, so the defaults carry every
variant seen in the TF and in the B. Braun-modelled examples (DOMAIN.md §0); operators
add their gateways' OIDs through ``LEDGER_HL7_PROFILE_OIDS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import ConfigurationError

PCD01 = "PCD-01"
PCD03 = "PCD-03"
PCD04 = "PCD-04"
PCD10 = "PCD-10"
SUPPORTED = (PCD01, PCD03, PCD04, PCD10)

#: Transaction → accepted MSH-21 OIDs (DOMAIN.md §0; TF-2 App. B.1 and M.1.1).
DEFAULT_PROFILE_OIDS: Mapping[str, tuple[str, ...]] = {
    PCD01: ("1.3.6.1.4.1.19376.1.6.1.1.1", "1.3.6.1.4.1.19376.1.6.4.1"),
    PCD03: ("1.3.6.1.4.1.19376.1.6.1.3.1", "1.3.6.1.4.1.19376.1.6.1.3.2"),
    PCD04: (
        "1.3.6.1.4.1.19376.1.6.1.4.1",
        "1.3.6.1.4.1.19376.1.6.4.4.1",
        "1.3.6.1.4.1.19376.1.6.4.4",
    ),
    PCD10: ("1.3.6.1.4.1.19376.1.6.4.10",),
}

#: OIDs of PCD profiles this edge recognises but does not translate (dead-lettered as
#: ``unsupported profile``, never silently ignored).
KNOWN_UNSUPPORTED_OIDS: Mapping[str, str] = {
    "1.3.6.1.4.1.19376.1.6.1.5.1": "PCD-05 (alert dissemination status)",
    "1.3.6.1.4.1.19376.1.6.1.6.1": "PCD-06 (alert dissemination)",
    "1.3.6.1.4.1.19376.1.6.1.7.1": "PCD-07 (alert dissemination status)",
    "1.3.6.1.4.1.19376.1.6.1.15.1": "PCD-15 (device management / status)",
}


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"hl7_local_timezone {name!r} is not an IANA zone") from exc


@dataclass(frozen=True)
class Hl7Config:
    """Translation settings (see ``docs/hl7.md`` for what each one changes)."""

    profile_oids: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_PROFILE_OIDS)
    )
    #: Refuse messages whose MSH-21 names no allow-listed OID (instead of routing on MSH-9).
    require_profile_oid: bool = False
    #: Zone for HL7 DTM values sent without a UTC offset; ``None``: fall back to MSH-7's
    #: offset, and refuse the message when MSH-7 has none either.
    local_timezone: tzinfo | None = None
    #: ``subject.facility_id`` stamped on every event (``None``: the default facility).
    facility_id: str | None = None
    #: Channel used when a PCD-03 program names its pump but no channel.
    default_channel: str = "1"
    #: Derive ``infusion.started``/``paused``/... from successive PCD-01 snapshots (only for
    #: sites without an IPEC feed).
    derive_pcd01_transitions: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.profile_oids) - set(SUPPORTED)
        if unknown:
            raise ConfigurationError(
                f"hl7_profile_oids: unknown transactions {sorted(unknown)}; use {SUPPORTED}"
            )

    def transaction_of(self, oid: str) -> str | None:
        for transaction, oids in self.profile_oids.items():
            if oid in oids:
                return transaction
        return None

    @classmethod
    def from_settings(cls, settings: Any) -> Hl7Config:
        """From ``LedgerSettings`` (its ``hl7_*`` fields); configured OIDs extend the defaults."""
        oids = {k: tuple(v) for k, v in DEFAULT_PROFILE_OIDS.items()}
        for transaction, extra in (getattr(settings, "hl7_profile_oids", None) or {}).items():
            oids[transaction] = tuple(dict.fromkeys((*oids.get(transaction, ()), *extra)))
        return cls(
            profile_oids=oids,
            require_profile_oid=bool(getattr(settings, "hl7_require_profile_oid", False)),
            local_timezone=_zone(getattr(settings, "hl7_local_timezone", None)),
            facility_id=getattr(settings, "hl7_facility_id", None),
            default_channel=getattr(settings, "hl7_default_channel", "1") or "1",
            derive_pcd01_transitions=bool(
                getattr(settings, "hl7_pcd01_derive_transitions", False)
            ),
        )
