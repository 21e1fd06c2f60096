"""TLS: the self-signed development certificate, the handshake, TLS >= 1.2 only, plain HTTP
refused on the TLS port, HSTS; and ``warden serve`` / ``warden certs`` end to end."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from tests.gateway.http.conftest import World, port_of
from typer.testing import CliRunner

from warden.cli.serve import certs_app
from warden.errors import ConfigError
from warden.gateway.app import Listener, create_app, serve_listeners, uvicorn_server
from warden.gateway.tls import server_context, write_self_signed


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return write_self_signed(tmp_path_factory.mktemp("tls"), hosts=["127.0.0.1", "localhost"])


@pytest.fixture(scope="module")
def tls_port(world: World, cert: Any) -> Iterator[int]:
    context = server_context(cert.cert, cert.key)
    server = uvicorn_server(Listener(create_app(world.gateway), "127.0.0.1", 0, context))
    thread = threading.Thread(target=lambda: asyncio.run(serve_listeners([server])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "TLS listener did not start"
        time.sleep(0.02)
    yield port_of(server)
    server.should_exit = True
    thread.join(timeout=20)


def _client_context(cafile: Path, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile))
    if maximum is not None:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
    return context


def test_the_key_is_private_and_the_cert_names_the_hosts(cert: Any) -> None:
    from cryptography import x509

    assert (cert.key.stat().st_mode & 0o777) == 0o600
    parsed = x509.load_pem_x509_certificate(cert.cert.read_bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1"}
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    with pytest.raises(ConfigError, match="exists; pass --force"):
        write_self_signed(cert.cert.parent)


def test_tls_handshake_and_hsts(tls_port: int, cert: Any) -> None:
    with httpx.Client(verify=_client_context(cert.cert)) as c:
        response = c.get(f"https://127.0.0.1:{tls_port}/healthz")
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


def test_plain_http_is_refused_on_the_tls_port(tls_port: int) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_port}/healthz", timeout=5)
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = s.recv(4096)
    assert b"200 OK" not in answer and b"healthz" not in answer


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_below_1_2_is_refused(tls_port: int, cert: Any) -> None:
    context = _client_context(cert.cert, maximum=ssl.TLSVersion.TLSv1_1)
    with (
        pytest.raises((ssl.SSLError, OSError)),
        socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass


def test_server_context_names_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot load certificate"):
        server_context(tmp_path / "cert.pem", tmp_path / "key.pem")


def test_certs_self_signed_cli(tmp_path: Path) -> None:
    root = typer.Typer()
    root.add_typer(certs_app, name="certs")
    result = CliRunner().invoke(
        root, ["certs", "self-signed", "--out", str(tmp_path / "c"), "--host", "127.0.0.1"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [
        str(tmp_path / "c" / "cert.pem"),
        str(tmp_path / "c" / "key.pem"),
    ]
    assert (tmp_path / "c" / "key.pem").stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(root, ["certs", "self-signed", "--out", str(tmp_path / "c")])
    assert again.exit_code == 2 and "error:" in again.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_warden_serve_runs_both_listeners_over_tls(tmp_path: Path, cert: Any) -> None:
    port, admin_port = _free_port(), _free_port()
    command = [
        sys.executable,
        "-c",
        "import typer; from warden.cli.serve import serve; typer.run(serve)",
        "--home", str(tmp_path / "home"),
        "--bind", f"127.0.0.1:{port}",
        "--admin-bind", f"127.0.0.1:{admin_port}",
        "--tls-cert", str(cert.cert),
        "--tls-key", str(cert.key),
        "--unsafe-no-input-guards",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        verify = _client_context(cert.cert)
        deadline = time.monotonic() + 60
        answers: dict[int, int] = {}
        with httpx.Client(verify=verify, timeout=5) as c:
            while len(answers) < 2:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "warden serve did not come up"
                for p in (port, admin_port):
                    try:
                        answers[p] = c.get(f"https://127.0.0.1:{p}/healthz").status_code
                    except httpx.TransportError:
                        time.sleep(0.1)
            assert c.get(f"https://127.0.0.1:{admin_port}/v1/users").status_code == 401
            assert c.get(f"https://127.0.0.1:{port}/v1/users").status_code == 404
        assert answers == {port: 200, admin_port: 200}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert f"inference API on https://127.0.0.1:{port}" in stderr and "stopped" in stderr


def test_warden_serve_refuses_half_a_tls_setup(tmp_path: Path, cert: Any) -> None:
    command = [
        sys.executable,
        "-c",
        "import typer; from warden.cli.serve import serve; typer.run(serve)",
        "--home", str(tmp_path / "home"),
        "--tls-cert", str(cert.cert),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "give both --tls-cert and --tls-key" in done.stderr
