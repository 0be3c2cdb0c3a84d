"""`callfloor serve` as a process at its HTTP edge: the Host check, malformed HTTP on a raw
socket, TLS with a certificate made by openssl, configuration warnings."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fixtures.process import find_binary
from serving import Served, free_port, request, serve

EVENT = json.dumps(
    {"type": "call_queued", "ts": time.time() - 5, "call_id": "c1", "queue": "q"}
).encode()
FOREIGN = "rebind.attacker.example"


def _raw(port: int, data: bytes) -> bytes:
    """Send ``data`` on a new connection to the server; everything it answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _stop(served: Served) -> str:
    """Stop a serve process (SIGTERM); its whole output."""
    served.proc.terminate()
    served.proc.wait(timeout=15)
    return served.output()


def test_a_foreign_host_gets_421_on_reads_and_writes(tmp_path: Path) -> None:
    """A token-less serve answers a read and a write naming a foreign Host with 421 (a
    DNS-rebinding page), and serves the same requests naming 127.0.0.1."""
    with serve(tmp_path) as served:
        get = f"GET /api/v1/agents HTTP/1.1\r\nHost: {FOREIGN}\r\nConnection: close\r\n\r\n"
        post = (
            f"POST /api/v1/events HTTP/1.1\r\nHost: {FOREIGN}:{served.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(EVENT)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + EVENT
        read = _raw(served.port, get.encode())
        wrote = _raw(served.port, post)
        own = request(f"{served.base}/api/v1/events", EVENT, "application/json")[0]
    assert read.startswith(b"HTTP/1.1 421")
    assert wrote.startswith(b"HTTP/1.1 421")
    assert b'"need":"allowed_host"' in read
    assert own == 202


def test_raw_malformed_http_gets_json_and_one_log_line(tmp_path: Path) -> None:
    """Twenty requests with a raw 0xff byte in the path each get a JSON 400 that does not
    echo them, and the process logs one WARNING line for all of them, no traceback."""
    with serve(tmp_path) as served:
        answers = [
            _raw(served.port, b"GET /api/v1/queues/\xffsecret-%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            for i in range(20)
        ]
        output = _stop(served)
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split()[1] == b"400"
        assert b"application/json" in head
        assert json.loads(body)["problem"] == "bad_target"
        assert b"secret" not in body
    logged = [line for line in output.splitlines() if "http_malformed" in line]
    assert len(logged) == 1
    assert "WARNING" in logged[0]
    assert "Traceback" not in output
    assert " ERROR " not in output


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 and its key, made by openssl."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            find_binary("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@contextmanager
def _serving_tls(config: Path, port: int, ca: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/healthz", timeout=1, context=context
                ):
                    break
            except (OSError, urllib.error.URLError):
                assert proc.poll() is None, proc.communicate()[0].decode()
                assert time.monotonic() < deadline, "serve did not start with TLS"
                time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()


def _https(url: str, context: ssl.SSLContext, body: bytes | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        return resp.status, json.loads(resp.read())


def test_tls_is_served_with_the_configured_certificate(tmp_path: Path) -> None:
    """With tls_cert and tls_key, serve speaks HTTPS with that certificate (a client that
    trusts it posts and reads), says https:// in its banner, and plain HTTP gets nothing."""
    cert, key = _certificate(tmp_path)
    config = tmp_path / "callfloor.toml"
    config.write_text(f'[http]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    port = free_port()
    context = ssl.create_default_context(cafile=str(cert))
    with _serving_tls(config, port, cert) as proc:
        posted, reply = _https(f"https://localhost:{port}/api/v1/events", context, EVENT)
        read, queues = _https(f"https://127.0.0.1:{port}/api/v1/queues", context)
        plain = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        proc.terminate()
        output = proc.communicate(timeout=15)[0].decode()
    assert (posted, reply["accepted"]) == (202, 1)
    assert read == 200
    assert "q" in queues["queues"]
    assert not plain.startswith(b"HTTP/")
    assert f"serving on https://127.0.0.1:{port}/" in output


def test_a_certificate_that_does_not_load_stops_serve_with_one_line(tmp_path: Path) -> None:
    """A key that is not the certificate's is a configuration error: exit 2, one line
    naming both keys, no traceback."""
    cert, _ = _certificate(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_key = _certificate(other)
    config = tmp_path / "callfloor.toml"
    config.write_text(f'[http]\ntls_cert = "{cert}"\ntls_key = "{wrong_key}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "callfloor", "serve", "--config", str(config)],
        capture_output=True,
        timeout=30,
    )
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2
    assert len(lines) == 1
    assert "http.tls_cert, http.tls_key" in lines[0]
    assert "cannot load the certificate" in lines[0]


def test_weak_settings_are_logged_at_start_naming_file_and_key(tmp_path: Path) -> None:
    """A one-character write token and a read token equal to the write token start, with
    one warning line each naming the file and the key (never the token)."""
    config = '[http]\nwrite_tokens = ["k"]\nread_tokens = ["k", "r-0123456789abcdef"]\n'
    with serve(tmp_path, config) as served:
        output = _stop(served)
    warnings = [line for line in output.splitlines() if "config_warning" in line]
    path = str(tmp_path / "callfloor.toml")
    assert len(warnings) == 3
    assert all(f"{path}: http." in line and "WARNING" in line for line in warnings)
    assert "http.write_tokens[0]: the token is 1 character long" in warnings[0]
    assert "http.read_tokens[0]: the same token is in write_tokens" in warnings[2]
