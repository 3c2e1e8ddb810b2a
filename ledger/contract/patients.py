"""Patient events: where the patient is, what was scanned, which pump channel serves them.

``patient.located`` (ADT location; units are what auditors filter by) and
``bcma.scan_recorded`` need ``[patient_id]``; ``pump.associated`` and
``pump.disassociated`` bind a pump channel to a patient and need
``[pump_id, channel, patient_id]``.
"""

from __future__ import annotations

from typing import Literal

from ledger.contract.common import Frozen, Text
from ledger.contract.envelope import AssociationSubject, Envelope, PatientSubject

ScanType = Literal["patient", "medication", "pump_channel", "clinician"]
ScanResult = Literal["match", "mismatch", "override"]
AssociationMethod = Literal["scan", "manual", "auto"]


class PatientLocatedData(Frozen):
    unit: Text
    bed: Text | None = None
    care_area: Text | None = None


class ScanRecordedData(Frozen):
    scan_type: ScanType
    value: Text
    result: ScanResult


class AssociationData(Frozen):
    method: AssociationMethod | None = None


class PatientLocated(Envelope):
    """``patient.located``: ADT care unit, bed and expected drug-library care area."""

    type: Literal["patient.located"]
    subject: PatientSubject
    data: PatientLocatedData


class BcmaScanRecorded(Envelope):
    """``bcma.scan_recorded``: A barcode scan at the bedside and whether it matched."""

    type: Literal["bcma.scan_recorded"]
    subject: PatientSubject
    data: ScanRecordedData


class PumpAssociated(Envelope):
    """``pump.associated``: A pump channel now serves this patient."""

    type: Literal["pump.associated"]
    subject: AssociationSubject
    data: AssociationData


class PumpDisassociated(Envelope):
    """``pump.disassociated``: A pump channel no longer serves this patient."""

    type: Literal["pump.disassociated"]
    subject: AssociationSubject
    data: AssociationData
