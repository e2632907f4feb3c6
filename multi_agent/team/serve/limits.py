"""Limits on request bodies: ``413`` before the application reads more than the limit, ``408``
for a body that does not arrive in time (a ``Content-Length`` larger than what is sent, a
client that trickles it)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from .errors import error_body

__all__ = ["BodyLimit"]

DRAIN_BYTES = 16 << 20


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets ``413`` and nothing is done.

    A ``Content-Length`` over the limit is refused before reading; a body sent in chunks is
    read up to the limit and refused as soon as it passes it. The application then receives
    the body it would have (buffered: bodies are small).
    """

    def __init__(self, app: Any, *, max_bytes: int, timeout: float = math.inf) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._refuse(send, 400, "bad_request", "invalid Content-Length")
                    return
                if declared < 0:
                    await self._refuse(send, 400, "bad_request", "invalid Content-Length")
                    return
                if declared > self.max_bytes:
                    await self._drain(receive, 0)
                    await self._too_large(send)
                    return
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(None if math.isinf(self.timeout) else self.timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body = message.get("body", b"")
                    size += len(body)
                    if size > self.max_bytes:
                        if message.get("more_body", False):
                            await self._drain(receive, size)
                        await self._too_large(send)
                        return
                    chunks.append(body)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await self._refuse(send, 408, "request_timeout",
                               f"the request body did not arrive within {self.timeout:g} s "
                               f"({size} bytes came)")
            return
        whole = b"".join(chunks)
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive: Any, size: int) -> None:
        """Reads (and drops) the rest of a refused body, up to ``DRAIN_BYTES``, so the client
        reads the 413 instead of a reset connection; past that the connection is closed."""
        while size < DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _too_large(self, send: Any) -> None:
        await self._refuse(send, 413, "body_too_large",
                           f"the request body is larger than {self.max_bytes} bytes")

    @staticmethod
    async def _refuse(send: Any, status: int, code: str, message: str) -> None:
        payload = json.dumps(error_body(code, message)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})
