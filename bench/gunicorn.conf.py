"""gunicorn settings of the load benchmark (bench/run.py), the same for the portal and the bare baseline.

* 2 workers of the default ``sync`` class, as README's production line (``--workers`` about 2 x cores on
  this 2-core machine). A sync worker serves one request at a time and closes the connection after each
  response (no keep-alive), as it would behind nginx; wrk keeps ``--connections`` requests in flight, so both
  workers are always busy and the latency includes the wait in the listen queue.
* No access log (its cost is not the portal's), warnings only.
The bind address comes from the command line (``--bind 127.0.0.1:PORT``); BENCH_WEB_WORKERS and
BENCH_WORKER_CLASS override the two choices for experiments.
"""
import os

workers = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
worker_class = os.environ.get("BENCH_WORKER_CLASS", "sync")
timeout = 60
graceful_timeout = 5
accesslog = None
loglevel = "warning"
preload_app = False
