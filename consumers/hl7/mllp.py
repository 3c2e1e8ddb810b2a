"""``ledger mllp``: an asyncio MLLP listener (TLS optional) that acknowledges after hand-off.

For each MLLP block (``<VT> message <FS><CR>``, framing by python-hl7's ``hl7.mllp``):

1. stamp ``received_at`` (UTC, the edge's clock);
2. read the MSH (to know whom to answer and which acknowledgements were asked for);
   a block without a readable MSH is answered ``AR`` and not handed on;
3. hand the raw bytes to the sink (Kafka or the ledger) in a worker thread, in arrival
   order — the event loop never blocks on I/O to Kafka or PostgreSQL;
4. only then send the acknowledgement(s) :func:`consumers.hl7.ack.plan` says the sender
   asked for (MSH-15/16), with ``CE``/``AE`` when the hand-off failed.

A block over ``max_message_bytes`` or broken framing closes that connection (the sender
reconnects and resends; nothing was acknowledged). Connections are independent; one
misbehaving sender never stops the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, start_hl7_server

from consumers.hl7.ack import Verdict, plan, render
from consumers.hl7.cleanup import decode, split_messages
from consumers.hl7.sinks import Sink
from consumers.hl7.view import MessageView

log = logging.getLogger(__name__)


def tls_context(certfile: str, keyfile: str | None, cafile: str | None) -> ssl.SSLContext:
    """Server-side TLS; with ``cafile`` clients must present a certificate it signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if cafile:
        context.load_verify_locations(cafile)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def header(raw: bytes) -> MessageView | None:
    """The first message of ``raw`` parsed far enough to answer it; ``None`` if unreadable."""
    try:
        split = split_messages(raw)
        if not split.messages:
            return None
        view = MessageView.parse(split.messages[0].text)
        msh = view.first("MSH")
        return view if msh is not None and msh.field_count() >= 9 else None
    except Exception:
        return None


class MllpListener:
    """The listener; :meth:`start` binds (port 0 picks a free one), :meth:`close` stops."""

    def __init__(
        self,
        sink: Sink,
        *,
        host: str = "127.0.0.1",
        port: int = 2575,
        ssl_context: ssl.SSLContext | None = None,
        max_message_bytes: int = 1_048_576,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.sink = sink
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.max_message_bytes = max_message_bytes
        self.clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hl7-handoff")
        self._server: asyncio.base_events.Server | None = None
        self._ids = itertools.count(1)
        self.handled = 0

    async def start(self) -> tuple[str, int]:
        self._server = await start_hl7_server(
            self._connected, self.host, self.port, limit=self.max_message_bytes,
            ssl=self.ssl_context,
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        log.info("MLLP listening on %s:%s%s", host, port, " (TLS)" if self.ssl_context else "")
        return host, port

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        self._executor.shutdown(wait=True)

    async def _connected(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    block = await reader.readblock()
                except asyncio.IncompleteReadError:
                    return  # the peer closed the connection
                except (InvalidBlockError, ValueError) as exc:
                    log.warning("MLLP %s: %s; closing the connection", peer, exc)
                    return
                await self._answer(block, writer)
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, block: bytes, writer: HL7StreamWriter) -> None:
        received_at = self.clock()
        view = header(block)
        msh = view.first("MSH") if view is not None else None
        if msh is None:
            verdict = Verdict("rejected", "no readable MSH segment", code="unparseable")
        else:
            loop = asyncio.get_running_loop()
            verdict = await loop.run_in_executor(
                self._executor, self.sink, block, received_at, msh.get(3, 1), msh.get(10)
            )
        self.handled += 1
        _, decoded_notes = decode(block)
        encoding = "latin-1" if decoded_notes else "utf-8"
        for code in plan(msh, verdict):
            control_id = f"ACK{received_at.strftime('%Y%m%d%H%M%S')}{next(self._ids):06d}"
            text = render(view, code, control_id=control_id, now=received_at, verdict=verdict)
            writer.writeblock(text.encode(encoding, "replace"))
        await writer.drain()
