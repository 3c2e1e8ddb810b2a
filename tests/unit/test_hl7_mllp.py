"""The MLLP listener over loopback with an asyncio MLLP client (python-hl7's), sink faked.

The end-to-end path into PostgreSQL is in tests/integration/test_hl7_mllp.py; here the
sink is an in-memory recorder, so framing, acknowledgement timing and TLS are tested fast.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import hl7
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hl7.mllp import open_hl7_connection

from consumers.hl7.ack import Verdict
from consumers.hl7.mllp import MllpListener, tls_context

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"
IPEC = (FIXTURES / "ihe_tf9_ipec_oru_r42_delivery_start.hl7").read_bytes()
NOW = dt.datetime(2026, 3, 14, 13, 5, tzinfo=dt.UTC)


class Recorder:
    def __init__(self, verdict: Verdict | None = None):
        self.verdict = verdict or Verdict("accepted")
        self.calls: list[tuple[bytes, dt.datetime, str, str]] = []

    def __call__(self, raw: bytes, received_at: dt.datetime, sender: str, control_id: str
                 ) -> Verdict:
        self.calls.append((raw, received_at, sender, control_id))
        return self.verdict


async def exchange(listener: MllpListener, messages: list[bytes], expect: int,
                   ssl_context: ssl.SSLContext | None = None) -> list[hl7.Message]:
    host, port = await listener.start()
    try:
        reader, writer = await open_hl7_connection(
            host, port, ssl=ssl_context, server_hostname="localhost" if ssl_context else None)
        for message in messages:
            writer.writeblock(message)
        await writer.drain()
        acks = [await asyncio.wait_for(reader.readmessage(), 10) for _ in range(expect)]
        writer.close()
        return acks
    finally:
        await listener.close()


def test_a_message_is_handed_on_then_accepted_with_the_ack_the_sender_asked_for() -> None:
    sink = Recorder()
    listener = MllpListener(sink, port=0, clock=lambda: NOW)
    (ack,) = asyncio.run(exchange(listener, [IPEC], 1))
    assert str(ack.segment("MSA")(1)) == "CA"  # MSH-15 AL, MSH-16 NE: enhanced mode
    assert str(ack.segment("MSA")(2)) == "6358051206735492253"
    (raw, received_at, sender, control_id), = sink.calls
    assert raw == IPEC and received_at == NOW
    assert (sender, control_id) == ("PAT_DEVICE_PUMPVENDOR", "6358051206735492253")


def test_an_original_mode_message_gets_an_application_ack() -> None:
    original = IPEC.replace(b"|P|2.6|||AL|NE||", b"|P|2.6|||||")
    (ack,) = asyncio.run(exchange(MllpListener(Recorder(), port=0), [original], 1))
    assert str(ack.segment("MSA")(1)) == "AA"


def test_a_failed_hand_off_is_answered_ce_so_the_sender_retries() -> None:
    sink = Recorder(Verdict("error", "Kafka unavailable"))
    (ack,) = asyncio.run(exchange(MllpListener(sink, port=0), [IPEC], 1))
    assert str(ack.segment("MSA")(1)) == "CE"
    assert "Kafka unavailable" in str(ack.segment("ERR"))


def test_a_block_without_msh_is_rejected_and_not_handed_on() -> None:
    sink = Recorder()
    (ack,) = asyncio.run(exchange(MllpListener(sink, port=0), [b"PID|||1"], 1))
    assert str(ack.segment("MSA")(1)) == "AR"
    assert sink.calls == []


def test_several_messages_on_one_connection_are_acknowledged_in_order() -> None:
    second = IPEC.replace(b"|6358051206735492253|", b"|SECOND|")
    acks = asyncio.run(exchange(MllpListener(Recorder(), port=0), [IPEC, second], 2))
    assert [str(a.segment("MSA")(2)) for a in acks] == ["6358051206735492253", "SECOND"]


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


def test_the_listener_speaks_mllp_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = tls_context(str(cert), str(key), None)
    client = ssl.create_default_context(cafile=str(cert))
    sink = Recorder()
    listener = MllpListener(sink, port=0, ssl_context=server)
    (ack,) = asyncio.run(exchange(listener, [IPEC], 1, client))
    assert str(ack.segment("MSA")(1)) == "CA"
    assert len(sink.calls) == 1
