"""A local SMTP sink that accepts and counts messages (bench/run.py, the email delivery figure).

    python bench/smtp_sink.py PORT STATUS_FILE

aiosmtpd on 127.0.0.1:PORT. Prints "READY" on stdout once it accepts connections, then rewrites STATUS_FILE
(JSON: messages, recipients, first and last arrival as Unix times) at most every 0.2 s; on SIGTERM or
SIGINT it writes the file a last time and exits. Messages are counted, not stored.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages = 0
        self.recipients = 0
        self.first = None
        self.last = None

    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        with self.lock:
            self.messages += 1
            self.recipients += len(envelope.rcpt_tos)
            self.first = self.first or now
            self.last = now
        return "250 OK"

    def snapshot(self) -> dict:
        with self.lock:
            return {"messages": self.messages, "recipients": self.recipients, "first": self.first,
                    "last": self.last}


def write(path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def main() -> int:
    port, status = int(sys.argv[1]), sys.argv[2]
    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    write(status, counter.snapshot())
    print("READY", flush=True)
    seen = -1
    while not stop.wait(0.2):
        snap = counter.snapshot()
        if snap["messages"] != seen:
            write(status, snap)
            seen = snap["messages"]
    controller.stop()
    write(status, counter.snapshot())
    return 0


if __name__ == "__main__":
    sys.exit(main())
