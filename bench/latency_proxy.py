"""A TCP proxy that adds a fixed latency to every request, for benchmarks: a registry on loopback
answers in a millisecond, a real one tens of milliseconds away. Each new connection waits the delay
once (its handshake), and so does every chunk the client sends (a request: HTTP/1.1 keep-alive
reuses connections, each request still pays the round trip). It relays bytes (asyncio, no HTTP
parsing) so its own CPU stays out of the measurement.

    python bench/latency_proxy.py UPSTREAM_HOST:PORT DELAY_MS   (prints the port it listens on)
"""

from __future__ import annotations

import asyncio
import sys


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float = 0.0
) -> None:
    try:
        while data := await reader.read(65536):
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(upstream: str, delay: float) -> None:
    host, _, port = upstream.rpartition(":")

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await asyncio.sleep(delay)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer, delay), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) / 1000))
