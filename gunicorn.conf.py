"""Production gunicorn settings.

`gunicorn 'api:create_app()'` run from the repository folder reads this file
(gunicorn loads ./gunicorn.conf.py by default); `make bench` serves the API
and its bare Flask yardstick with exactly these settings.

Tuned for the project's machines: 2 cores, PostgreSQL on the same machine.
What `make bench` and side-by-side runs of other settings showed:

- Request handling is CPU-bound Python: a fresh scan costs about 2.4 ms
  of CPU in the worker and 1.2 ms in PostgreSQL, and the worker waits for
  the database for a good part of the request. Three to six requests in
  flight keep both cores busy; more only queue.
- Processes for parallel Python (the GIL); two threads per worker let a
  worker run one request while another waits for the database, and one
  slow request (a batch of forms, an export) does not hold up every
  connection its worker keeps alive. Side by side at 32 clients with the
  connections spread (below), 4 workers x 1 thread served 10 % more scans
  per second than 3 x 2 at 8 % less CPU per scan (two threads hand the GIL
  back and forth), but with that hold-up; so cores + 1 processes, 2 threads
  each, and GUNICORN_WORKERS / GUNICORN_THREADS for a site that wants the
  other.
- gthread rather than sync: HTTP keep-alive for kiosks and intermediaries
  that send many requests, and a slow or idle client does not hold a
  worker (sync workers need a buffering proxy in front for that). Its
  workers take new connections only while they have a thread free
  (BalancedThreadWorker below): kept-alive connections, nginx's upstream
  pool among them, otherwise pile up on one worker.
- The garbage collector's full passes walk every object of the process:
  with Flask, SQLAlchemy and the app loaded that is about 140,000 objects
  and 45 to 95 ms a pass, in the middle of whichever requests the worker
  is running (one pass every hundred officer-queue reads or so). Those
  objects live as long as the worker, so each worker freezes them once the
  app is loaded (gc.freeze(): the passes skip them); measured with
  bench/compare.py, a full pass then takes under 5 ms.

WEB_CONCURRENCY (gunicorn's own variable), GUNICORN_WORKERS and
GUNICORN_THREADS override the counts for a bigger machine: keep about one
worker per core plus one, two threads each.

Metrics (GET /metrics, api/observability): every worker counts in files
of its own in PROMETHEUS_MULTIPROC_DIR, and a scrape served by any worker
adds them up. The master empties that folder when it starts, before any
worker exists (counts of an earlier run would otherwise be added in), and
tells prometheus-client when a worker exits so its gauges stop counting.
Without the variable, the master makes a private folder and removes it
on exit.
"""
import gc
import os
import shutil
import tempfile
import time

from gunicorn.workers.gthread import ThreadWorker

_cores = os.cpu_count() or 2


class BalancedThreadWorker(ThreadWorker):
    """gthread that leaves new connections to workers with a thread free.

    Every worker waits on the one listening socket and gthread accepts
    whatever it is woken for, queueing it behind its own threads however
    busy they are. Kept-alive connections then stay wherever they first
    landed: sampled during bench/compare.py runs, 28 to all 32 of wrk's
    connections sat on one worker in most runs, and with all 32 there that
    worker, bound to one core by the GIL, set the pace alone (fresh scans
    324 requests/s instead of about 500; earlier `make bench` runs swung
    the same way, POST /forms 265 or 415). Here a worker whose threads are all taken
    stops listening, so an idle worker takes the connection, as sync
    workers share them out.

    When every worker is busy, kept-alive clients alone would keep them so
    and a new client would wait in the socket's queue for as long as they
    keep sending (6.5 s of 8 in a trial). So a busy worker still takes one
    new connection once it has left them to the others for BUSY_LEAVES_NEW
    seconds, and then leaves them again. An idle worker takes a connection
    well within that; a longer wait only delays the first requests of
    clients that connect together (side by side at 32 clients, scan p99
    was 200 ms with 20 ms here, 128 ms with 2 ms).
    """

    BUSY_LEAVES_NEW = 0.002

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Requests handed to the thread pool and not yet finished, and since
        # when this worker has left new connections to the others; only the
        # main thread (the event loop) touches them.
        self.in_flight = 0
        self.leaving_since = 0.0

    def busy(self) -> bool:
        return self.in_flight >= self.cfg.threads

    def leave_new_connections(self) -> None:
        self.leaving_since = time.monotonic()
        super().set_accept_enabled(False)

    def enqueue_req(self, conn):
        self.in_flight += 1
        if self.in_flight == self.cfg.threads:
            self.leave_new_connections()
        super().enqueue_req(conn)

    def accept(self, listener):
        super().accept(listener)
        if self.busy():  # took one while busy: the next ones go to the others first
            self.leave_new_connections()

    def finish_request(self, conn, fs):
        self.in_flight -= 1
        super().finish_request(conn, fs)

    def set_accept_enabled(self, enabled):
        """The event loop asks at every turn while this differs from its
        own rule (accept below worker_connections)."""
        if enabled and self.busy():
            enabled = time.monotonic() - self.leaving_since >= self.BUSY_LEAVES_NEW
        super().set_accept_enabled(enabled)


worker_class = BalancedThreadWorker
workers = int(os.environ.get("GUNICORN_WORKERS") or os.environ.get("WEB_CONCURRENCY") or _cores + 1)
threads = int(os.environ.get("GUNICORN_THREADS") or 2)
# Seconds an idle keep-alive connection stays open: a kiosk scanning a
# traveller's several forms reuses its connection.
keepalive = 5
# A request that takes longer than this is stuck (a scan takes milliseconds):
# the worker is restarted.
timeout = 30
graceful_timeout = 20
# No access log: the app writes one JSON line per request itself (route,
# status, duration, request id; api/observability/logs.py). Errors still go
# to stderr. Should one be switched on (--access-logfile), it shows the path
# without its query string (%(U)s, not the request line %(r)s): the
# traveller status lookup used to carry a last name there.
accesslog = None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
# gunicorn >= 25.1 opens a control socket at one fixed path per user
# ($HOME/.gunicorn/gunicorn.ctl): a second instance on the machine (the
# bench's yardstick, a test) would take it over. Nothing here uses it.
control_socket_disable = True


_own_metrics_dir = None


def on_starting(server):
    """Before any worker: an empty metrics folder, named in the environment
    the workers inherit (prometheus-client reads it when first imported)."""
    global _own_metrics_dir
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = _own_metrics_dir = tempfile.mkdtemp(prefix="taxfree-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


def child_exit(server, worker):
    """A worker is gone: its live gauges (connections in use) stop counting;
    its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)


def post_worker_init(worker):
    """The app is loaded in this worker: take its long-lived objects out of
    the garbage collector's full passes (see above)."""
    gc.freeze()
