"""Background processes.

    python worker.py            an RQ worker (queues notify, default, maintenance) with RQ's built-in
                                scheduler for delayed jobs and retries; every job runs in the app context
    python worker.py --clock    the one clock: enqueues periodic jobs (stable ids, Redis lock)
    python worker.py --burst    process what is queued, then exit
"""
from __future__ import annotations

import argparse
import logging
import sys

from portal import create_app
from portal.core import jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clock", action="store_true", help="run the periodic-job clock instead")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--interval", type=float, default=5.0, help="clock tick in seconds")
    parser.add_argument("--queues", default=",".join(jobs.QUEUES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app = create_app()
    jobs.set_app(app)
    if args.clock:
        jobs.clock_loop(args.interval)
        return 0

    from rq import SimpleWorker
    conn = jobs.get_redis(app.config["REDIS_URL"])
    queues = [jobs.get_queue(name) for name in args.queues.split(",")]
    # SimpleWorker runs jobs in this process (no fork per job): fast, and the app/engine are reused.
    worker = SimpleWorker(queues, connection=conn)
    worker.work(burst=args.burst, with_scheduler=True, logging_level="INFO")
    return 0


if __name__ == "__main__":
    sys.exit(main())
