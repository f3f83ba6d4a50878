"""moto's server on 127.0.0.1:PORT, in a process of its own. With --hold, jobs stay SUBMITTED (moto runs containers
with Docker, which a benchmark machine need not have; the simple backend ends every job at once)."""

from __future__ import annotations

import logging
import sys
import time

from moto.server import ThreadedMotoServer


def main() -> None:
    port = int(sys.argv[1])
    if "--hold" in sys.argv:
        from moto.batch.models import Job

        Job.run = lambda self: None  # type: ignore[method-assign]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
