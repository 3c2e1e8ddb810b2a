"""Property tests: mutated and random messages never crash the edge and always get an outcome.

Mutations model real damage (dropped, duplicated or swapped separators, truncation, line
breaks in odd places, bytes flipped, segments deleted or repeated, junk spliced in). The
properties: no exception escapes ``Session.translate``; every message gets exactly one of
events / no_event / dead_lettered; a dead letter has a code and a detail; every event is
valid under the v1 contract with an aware ``occurred_at``; an ``internal_error`` (a bug
caught by the safety net) never happens on these inputs.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.hl7 import Session, Translation
from consumers.hl7.ack import Verdict, plan, render
from consumers.hl7.mllp import header
from ledger.contract import parse_event, wire_dict

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"
SAMPLES = [p.read_bytes() for p in sorted(FIXTURES.glob("*.hl7"))]
CHARS = b"|^~\\&\r\n \x0b\x1c0123456789.-+MSHOBXZAB"


def mutate(data: st.DataObject, raw: bytes) -> bytes:
    for _ in range(data.draw(st.integers(1, 6), label="mutations")):
        if not raw:
            break
        at = data.draw(st.integers(0, len(raw) - 1), label="at")
        kind = data.draw(st.sampled_from(
            ["delete", "insert", "flip", "truncate", "dup_line", "drop_line", "swap"]))
        if kind == "delete":
            size = data.draw(st.integers(1, 12))
            raw = raw[:at] + raw[at + size:]
        elif kind == "insert":
            piece = data.draw(st.binary(max_size=8) | st.sampled_from(
                [b"|", b"^", b"\n", b"\r\n", b" ", b"OBX|", b"\nZZZ|1|", b"\xff\xfe", b"-0500"]))
            raw = raw[:at] + piece + raw[at:]
        elif kind == "flip":
            raw = raw[:at] + bytes([data.draw(st.sampled_from(CHARS))]) + raw[at + 1:]
        elif kind == "truncate":
            raw = raw[:at]
        else:
            lines = raw.split(b"\n")
            i = data.draw(st.integers(0, len(lines) - 1))
            if kind == "dup_line":
                lines.insert(i, lines[i])
            elif kind == "drop_line":
                del lines[i]
            elif len(lines) > 1:
                j = data.draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            raw = b"\n".join(lines)
    return raw


def check(translations: list[Translation]) -> None:
    assert translations, "every input gets at least one outcome"
    for translation in translations:
        assert translation.outcome in ("events", "no_event", "dead_lettered")
        if translation.dead_letter is not None:
            assert translation.dead_letter.code and translation.dead_letter.detail
            assert translation.dead_letter.code != "internal_error", translation.summary()
            assert not translation.events
        elif not translation.events:
            assert translation.no_event_reason
        for event in translation.events:
            assert event.occurred_at.utcoffset() is not None
            assert parse_event(wire_dict(event)) == event
        translation.summary()  # JSON-able report never fails


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), sample=st.sampled_from(SAMPLES))
def test_mutated_samples_never_crash_and_always_get_a_clear_outcome(
    data: st.DataObject, sample: bytes
) -> None:
    check(Session().translate(mutate(data, sample)))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=400) | st.text(max_size=400))
def test_arbitrary_bytes_never_crash_the_translator(raw: bytes | str) -> None:
    check(Session().translate(raw))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), sample=st.sampled_from(SAMPLES))
def test_every_mutated_message_can_be_acknowledged(data: st.DataObject, sample: bytes) -> None:
    raw = mutate(data, sample)
    view = header(raw)
    msh = view.first("MSH") if view is not None else None
    for status in ("accepted", "error", "rejected"):
        for code in plan(msh, Verdict(status, "why", applied=True)):
            ack = render(view, code, control_id="A1", verdict=Verdict(status, "why"))
            assert ack.startswith("MSH|^~\\&|") and f"\rMSA|{code}|" in ack


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_stream_of_mutated_messages_in_one_file_gives_one_outcome_per_message(
    data: st.DataObject,
) -> None:
    picks = data.draw(st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=5))
    check(Session().translate(b"\n".join(mutate(data, p) for p in picks)))
