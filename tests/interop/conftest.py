"""Fixtures for the interop tests: a real `hookrelay serve` process and a real webhook receiver, both on
loopback. The binary comes from $HOOKRELAY_BIN (set by .ci/run), else target/debug/hookrelay. The `server`
fixture runs every test twice: on the embedded SQLite database and on PostgreSQL (a fresh schema per test on
$HOOKRELAY_TEST_DATABASE_URL, default the local server CI provides)."""

import http.server
import json
import os
import pathlib
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import psycopg
import pytest

TOKEN = "interop-admin-token"
DATABASE_URL = os.environ.get("HOOKRELAY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
ROOT = pathlib.Path(__file__).resolve().parents[2]


def wait_for(what, check, timeout=20.0):
    """Polls `check` until it returns something truthy, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def call(server, method, path, body=None, headers=None, raw=None, token=True):
    """One HTTP request; returns (status, parsed JSON body or None)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(server.url + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {TOKEN}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    return status, (json.loads(text) if text else None)


class Server:
    def __init__(self, data_dir, extra_env=None):
        binary = os.environ.get("HOOKRELAY_BIN", str(ROOT / "target" / "debug" / "hookrelay"))
        env = dict(
            os.environ,
            HOOKRELAY_LISTEN="127.0.0.1:0",
            HOOKRELAY_DATA_DIR=str(data_dir),
            HOOKRELAY_ADMIN_TOKEN=TOKEN,
            HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS="true",
            HOOKRELAY_RETRY_SCHEDULE="1,1",
            HOOKRELAY_LOG="warn",
        )
        env.update(extra_env or {})
        self.process = subprocess.Popen(
            [binary, "serve"], env=env, stdout=subprocess.PIPE, text=True
        )
        for line in self.process.stdout:
            if line.startswith("hookrelay listening on "):
                self.url = line.split()[3]
                break
        else:
            raise RuntimeError("hookrelay exited before listening")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)


class Receiver:
    """Records every request; answers with the next status from `statuses` (then 200)."""

    def __init__(self, statuses=()):
        self.requests = []
        self.statuses = list(statuses)
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"

    def wait_for(self, count, timeout=20.0):
        return wait_for(
            f"{count} webhooks", lambda: list(self.requests) if len(self.requests) >= count else None, timeout
        )

    def stop(self):
        self.server.shutdown()


class PostgresSchema:
    """A schema of its own on the test PostgreSQL server, dropped afterwards; `url` points hookrelay at it."""

    def __init__(self):
        self.name = "hr_interop_" + uuid.uuid4().hex[:16]
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        separator = "&" if "?" in DATABASE_URL else "?"
        self.url = f"{DATABASE_URL}{separator}options=-csearch_path%3D{self.name}"

    def drop(self):
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    schema = PostgresSchema() if request.param == "postgres" else None
    running = Server(tmp_path / "data", {"HOOKRELAY_DATABASE_URL": schema.url} if schema else None)
    yield running
    running.stop()
    if schema:
        schema.drop()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.stop()
