#!/usr/bin/env python3
"""bench/fake-mtqp.py: a minimal MTQP server (RFC 3887 shapes only) for
bench/smoke.sh, so mtqp-load is exercised even where msgtrkd's MTQP server
is not available.  Answers every well-formed TRACK with a +OK+ block,
QUIT with +OK, anything else with -BAD.  Not a benchmark target.

usage: fake-mtqp.py PORT   (listens on 127.0.0.1:PORT until SIGTERM)
"""
import asyncio
import signal
import sys

BODY = (b"+OK+ tracking information follows\r\n"
        b"Content-Type: message/tracking-status\r\n\r\n"
        b"Original-Envelope-Id: x\r\n..stuffed line\r\n.\r\n")


async def session(reader, writer):
    writer.write(b"+OK/MTQP fake bench server\r\n")
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            words = line.rstrip(b"\r\n").split(b" ")
            if words[0] == b"TRACK" and len(words) == 3:
                writer.write(BODY)
            elif words[0] == b"QUIT":
                writer.write(b"+OK bye\r\n")
                break
            else:
                writer.write(b"-BAD unknown command\r\n")
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main(port):
    server = await asyncio.start_server(session, "127.0.0.1", port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
