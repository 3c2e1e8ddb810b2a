"""Pump programming events: auto-programming requests and replies, and what was confirmed.

``program.auto_requested`` is PCD-03 RGV^O15 and needs ``[pump_id, channel, order_id]``;
``program.auto_accepted``/``program.auto_rejected`` are the application-level replies
(RRG^O16 AA, AE/AR) — an ACK^O15 only says the message arrived. ``program.confirmed`` is
what was on the pump when it started, linked to its order through ``request_id``.
"""

from __future__ import annotations

from typing import Literal

from ledger.contract.common import Frozen, Medication, Text
from ledger.contract.delivery import InfusateSourceField
from ledger.contract.envelope import AutoProgramSubject, ChannelSubject, Envelope, NoData
from ledger.contract.quantities import BodyWeight, Concentration, Flow, OrderedDose, Volume

ProgramMode = Literal["auto", "manual"]
LibraryMode = Literal["library", "basic"]


class AutoRequestedData(Frozen):
    request_id: Text
    medication: Medication
    concentration: Concentration | None = None
    dose: OrderedDose | None = None
    rate: Flow | None = None
    vtbi: Volume | None = None
    dosing_weight: BodyWeight | None = None


class AutoAcceptedData(Frozen):
    request_id: Text


class AutoRejectedData(Frozen):
    request_id: Text
    reason_code: Text | None = None
    reason_text: Text | None = None


class ConfirmedData(Frozen):
    mode: ProgramMode
    medication: Medication
    rate: Flow
    library_mode: LibraryMode
    request_id: Text | None = None
    concentration: Concentration | None = None
    dose: OrderedDose | None = None
    vtbi: Volume | None = None
    dosing_weight: BodyWeight | None = None
    care_area: Text | None = None
    library_version: Text | None = None
    library_entry_id: Text | None = None
    infusate_source: InfusateSourceField = "primary"


class AutoProgramRequested(Envelope):
    """``program.auto_requested``: The EHR sent a program to the pump (PCD-03 RGV^O15)."""

    type: Literal["program.auto_requested"]
    subject: AutoProgramSubject
    data: AutoRequestedData


class AutoProgramAccepted(Envelope):
    """``program.auto_accepted``: The pump accepted an auto-program (RRG^O16 AA)."""

    type: Literal["program.auto_accepted"]
    subject: ChannelSubject
    data: AutoAcceptedData


class AutoProgramRejected(Envelope):
    """``program.auto_rejected``: The pump refused an auto-program (RRG^O16 AE/AR)."""

    type: Literal["program.auto_rejected"]
    subject: ChannelSubject
    data: AutoRejectedData


class ProgramConfirmed(Envelope):
    """``program.confirmed``: The values on the pump when the clinician started it."""

    type: Literal["program.confirmed"]
    subject: ChannelSubject
    data: ConfirmedData


class ProgramCleared(Envelope):
    """``program.cleared``: The channel's program was cleared."""

    type: Literal["program.cleared"]
    subject: ChannelSubject
    data: NoData
