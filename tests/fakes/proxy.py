"""A minimal HTTP CONNECT proxy on 127.0.0.1, to show the bot's Bot API traffic goes through one."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self


class ConnectProxy:
    """Tunnels ``CONNECT host:port`` requests and remembers each target it was asked for."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.refused = 0  # CONNECT requests answered 502 by ``break_for``
        self._refuse_next = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._streams: set[asyncio.StreamWriter] = set()
        self.url = ""

    def break_for(self, connects: int) -> None:
        """Cut every open tunnel and answer the next ``connects`` CONNECT requests 502, like a proxy
        that lost its upstream for a while."""
        self._refuse_next = connects
        for stream in self._streams:
            stream.close()
        self._streams.clear()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._pipes:
            task.cancel()
        for stream in self._streams:  # cancelled pipes leave their tunnels open
            stream.close()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = request.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        if self._refuse_next > 0:
            self._refuse_next -= 1
            self.refused += 1
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.targets.append(target)
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self._streams |= {writer, up_writer}
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()
