"""Production serving: `gunicorn 'api:create_app()'` with several workers."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import requests

from tests.servers import free_port, gunicorn_command, serving


def test_gunicorn_serves_the_app_from_its_factory(database_url, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path)}
    with serving(gunicorn_command(port, workers=2), port, env, ready="/readyz") as url:
        assert requests.get(f"{url}/readyz", timeout=10).json() == {"status": "ready"}
        # Both workers share the database's signing keys: one key set whichever answers.
        kids = {tuple(k["kid"] for k in requests.get(f"{url}/.well-known/jwks.json", timeout=5).json()["keys"])
                for _ in range(6)}
        assert len(kids) == 1
        missing = requests.get(f"{url}/api/v1/forms/NL0000000", timeout=5)
        assert missing.status_code == 401
        assert missing.headers["Content-Type"] == "application/problem+json"


def _ready(connection: HTTPConnection) -> None:
    """GET /readyz on a kept-alive connection, its answer read to the end."""
    connection.request("GET", "/readyz")
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 200


def _connections_per_process(port: int) -> dict[int, int]:
    """Established connections to ``port`` on 127.0.0.1, counted per process
    that holds the server's end (from /proc: which socket each worker has)."""
    server_end = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
                if local_port == port and state == "01":  # ESTABLISHED
                    server_end.add(f"socket:[{inode}]")
    counts: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f"127.0.0.1:{port}".encode() not in f.read():
                    continue
            held = sum(os.readlink(f"/proc/{pid}/fd/{fd}") in server_end for fd in os.listdir(f"/proc/{pid}/fd"))
        except (FileNotFoundError, PermissionError):
            continue
        if held:
            counts[int(pid)] = held
    return counts


def _every_worker_serving(port: int, workers: int) -> None:
    """Return once each of the ``workers`` has answered (a worker loads the
    app for a second or more after the first one already answers): open
    connections one after the other, keeping each, until that many
    processes hold one."""
    held: list[HTTPConnection] = []
    try:
        deadline = time.monotonic() + 60
        while len(_connections_per_process(port)) < workers:
            assert time.monotonic() < deadline, "the workers did not all start"
            held.append(HTTPConnection("127.0.0.1", port, timeout=30))
            _ready(held[-1])
    finally:
        for connection in held:
            connection.close()
    while _connections_per_process(port):  # the workers have seen them closed
        time.sleep(0.05)


def _open_at_once(port: int, clients: int, requests_each: int) -> dict[int, int]:
    """``clients`` connections opened at the same moment, each kept for
    ``requests_each`` requests; how many each worker held, before they close."""
    barrier = threading.Barrier(clients)
    opened: list[HTTPConnection] = []

    def client() -> None:
        barrier.wait()
        connection = HTTPConnection("127.0.0.1", port, timeout=30)
        connection.connect()
        opened.append(connection)
        for _ in range(requests_each):
            _ready(connection)

    with ThreadPoolExecutor(clients) as pool:
        for done in [pool.submit(client) for _ in range(clients)]:
            done.result()
    try:
        return _connections_per_process(port)
    finally:
        for connection in opened:
            connection.close()
        while _connections_per_process(port):  # the workers have seen them closed
            time.sleep(0.05)


def test_kept_alive_connections_spread_over_the_workers(database_url, tmp_path):
    """Clients that open their connections at once and keep them (kiosks,
    an intermediary's pool, a proxy's upstream pool) end up spread over the
    workers, not piled on whichever worker woke first while the others idle.
    Which worker wakes first is up to the scheduler, so the spread is judged
    over a few rounds rather than one."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path)}
    clients, rounds = 24, 3
    with serving(gunicorn_command(port, workers=3), port, env, ready="/readyz"):
        _every_worker_serving(port, 3)
        spreads = [_open_at_once(port, clients, requests_each=20) for _ in range(rounds)]
    for per_worker in spreads:
        assert sum(per_worker.values()) == clients, spreads
        assert len(per_worker) == 3, spreads
    # Even would be 8 each. The stock gthread worker left 20 or more on one
    # in most rounds, 13 to 18 in the others; this one at most 13 in one
    # round of a loaded test run, 8 to 11 as a rule.
    assert sum(max(per_worker.values()) for per_worker in spreads) <= rounds * clients // 2, spreads


def test_a_new_client_is_served_while_kept_alive_clients_keep_every_worker_busy(database_url, tmp_path):
    """Workers with every thread taken leave new connections to idle ones;
    when none is idle, a new client must still get in, not wait for as long
    as the others keep sending."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path)}
    newcomers_done = threading.Event()
    busy_served: list[int] = []
    with serving(gunicorn_command(port, workers=3), port, env, ready="/readyz") as url:
        _every_worker_serving(port, 3)

        def busy() -> None:
            served, connection = 0, HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                deadline = time.monotonic() + 30
                while not newcomers_done.is_set() and time.monotonic() < deadline:
                    _ready(connection)
                    served += 1
            finally:
                connection.close()
            busy_served.append(served)

        with ThreadPoolExecutor(24) as pool:
            running = [pool.submit(busy) for _ in range(24)]
            time.sleep(1)  # every worker has its share of them, all threads taken
            for _ in range(10):
                assert requests.get(f"{url}/readyz", timeout=30).status_code == 200
            # Answered while the others kept every worker busy, not after.
            assert not any(done.done() for done in running)
            newcomers_done.set()
            for done in running:
                done.result()
    assert len(busy_served) == 24 and min(busy_served) > 0
