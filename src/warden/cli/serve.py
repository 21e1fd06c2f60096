"""``warden serve`` (the gateway's two listeners) and ``warden certs self-signed``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from warden.cli._common import err, out, user_errors
from warden.cli._store import AUDIT_KEY_ENV, home_option, open_store

__all__ = ["certs_app", "serve"]

REDIS_ENV = "WARDEN_REDIS_URL"
"""Shared rate-limit state for several workers or hosts."""

certs_app = typer.Typer(
    help="TLS certificates for the gateway (development).", no_args_is_help=True
)


def _address(text: str, what: str) -> tuple[str, int]:
    from warden.errors import ConfigError

    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what}: expected HOST:PORT (e.g. 127.0.0.1:8443), found {text!r}")
    return host, int(port)


def serve(
    home: Annotated[Path | None, home_option()] = None,
    bind: Annotated[
        str, typer.Option(help="Inference listener HOST:PORT (0.0.0.0:PORT for every interface).")
    ] = "127.0.0.1:8443",
    admin_bind: Annotated[
        str, typer.Option(help="Admin listener HOST:PORT; keep it on loopback or a private net.")
    ] = "127.0.0.1:8444",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (only 1 for now).")] = 1,
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate chain: serve both listeners over TLS.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Gateway settings (TOML; default HOME/gateway.toml when it exists)."),
    ] = None,
    unsafe_no_input_guards: Annotated[
        bool,
        typer.Option(
            "--unsafe-no-input-guards",
            help="Serve models that have no input guards configured (output filters only).",
        ),
    ] = False,
) -> None:
    """Serve the inference and admin APIs until interrupted (Ctrl-C or SIGTERM)."""
    import asyncio
    import signal
    import tomllib

    with user_errors():
        from warden.errors import ConfigError
        from warden.gateway.app import (
            Gateway,
            GatewaySettings,
            Listener,
            create_admin_app,
            create_app,
            serve_listeners,
            settings_from_config,
            uvicorn_server,
        )
        from warden.gateway.tls import server_context

        if workers != 1:
            raise ConfigError(
                "--workers above 1 is not supported yet: run one `warden serve` per core "
                f"behind a load balancer, with {REDIS_ENV} set so rate limits are shared"
            )
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError("give both --tls-cert and --tls-key, or neither")
        host, port = _address(bind, "--bind")
        admin_host, admin_port = _address(admin_bind, "--admin-bind")
        context = None if tls_cert is None or tls_key is None else server_context(tls_cert, tls_key)
        store = open_store(home)
        path = config if config is not None else store.home / "gateway.toml"
        if path.is_file():
            try:
                doc = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"{path}: not a readable TOML file ({exc})") from exc
            settings = settings_from_config(
                doc, base=path.parent, unsafe_no_input_guards=unsafe_no_input_guards
            )
        elif config is not None:
            raise ConfigError(f"{config}: no such file")
        else:
            settings = settings_from_config(
                {}, base=store.home, unsafe_no_input_guards=unsafe_no_input_guards
            )
        assert isinstance(settings, GatewaySettings)
        limiter = None
        redis_url = os.environ.get(REDIS_ENV)
        if redis_url:
            from warden.gateway.ratelimit_redis import RedisLimiter

            limiter = RedisLimiter.from_url(redis_url)
        if admin_host not in ("127.0.0.1", "::1", "localhost"):
            err.print(f"warning: the admin API listens on {admin_host}, beyond loopback")
        gateway = Gateway.open(
            store,
            audit_key_text=os.environ.get(AUDIT_KEY_ENV) or None,
            settings=settings,
            limiter=limiter,
        )
        servers = [
            uvicorn_server(Listener(create_app(gateway), host, port, context)),
            uvicorn_server(Listener(create_admin_app(gateway), admin_host, admin_port, context)),
        ]
        scheme = "https" if context is not None else "http"
        err.print(
            f"warden: inference API on {scheme}://{host}:{port}, admin API on "
            f"{scheme}://{admin_host}:{admin_port}",
            highlight=False,
        )

        async def main() -> None:
            loop = asyncio.get_running_loop()

            def stop() -> None:
                for server in servers:
                    server.should_exit = True

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop)
            await serve_listeners(servers)

        try:
            asyncio.run(main())
        finally:
            gateway.close()
            store.close()
        err.print("warden: stopped")


@certs_app.command("self-signed")
def self_signed(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for cert.pem and key.pem.")],
    host: Annotated[
        list[str] | None,
        typer.Option(help="IP address or DNS name the certificate is for (repeatable)."),
    ] = None,
    days: Annotated[int, typer.Option(help="Validity in days.")] = 30,
    force: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """A self-signed certificate and key (0600) for development: never for production."""
    with user_errors():
        from warden.gateway.tls import write_self_signed

        made = write_self_signed(out_dir, hosts=host or ["127.0.0.1"], days=days, force=force)
        out.print(str(made.cert), highlight=False)
        out.print(str(made.key), highlight=False)
        err.print(f"SHA-256 fingerprint: {made.fingerprint}", highlight=False)
