"""Errors of the HL7 edge. Each carries a stable ``code`` used as the dead-letter reason.

They never escape :func:`consumers.hl7.translator.translate`: a message that raises one is
dead-lettered with that code and the message text as detail.
"""

from __future__ import annotations

from ledger.errors import LedgerError


class Hl7Error(LedgerError):
    """Root of the errors raised deliberately by the HL7 edge."""

    code = "hl7_error"


class Unparseable(Hl7Error):
    """The input holds no message the parser can read (no MSH, broken separators)."""

    code = "unparseable"


class UnsupportedProfile(Hl7Error):
    """A well-formed message of a profile or type the ledger does not translate."""

    code = "unsupported_profile"


class ProfileMismatch(Hl7Error):
    """MSH-21 names one transaction and MSH-9 another: refused rather than guessed."""

    code = "profile_mismatch"


class Untranslatable(Hl7Error):
    """A supported message from which no contract event can be recovered."""

    code = "untranslatable"
