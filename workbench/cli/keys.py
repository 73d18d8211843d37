"""``workbench keys set|list|delete|kite-login``: real brokers' API keys, encrypted in the user's vault."""

from __future__ import annotations

from pathlib import Path

import typer

from workbench.cli.common import HomeOpt, _fail, _settings
from workbench.config import Settings
from workbench.errors import ConfigError, WorkbenchError

keys_app = typer.Typer(
    no_args_is_help=True, help="Broker API keys, encrypted in the vault: set, list, delete, Kite login."
)


def _vault(settings: Settings):
    """The logged-in user's vault and a way to audit: keys are always some user's (a session is required)."""
    from workbench.security.access import accounts_for, require_session
    from workbench.security.vault import Vault

    accounts = accounts_for(settings)
    user = require_session(accounts, settings).user
    vault = Vault.open(accounts.engine, settings.home, user.id)
    return vault, lambda action, detail: accounts.record(user, action, True, detail)


@keys_app.command("set")
def keys_set(
    name: str = typer.Argument(..., help="a registered venue that takes keys, e.g. ccxt:<exchange id>, kite, alpaca"),
    home: Path | None = HomeOpt,
) -> None:
    """Store a broker's API keys (typed hidden, never echoed or logged), e.g. `workbench keys set ccxt:binance`."""
    from workbench.trading.runner import broker_name, key_fields

    try:
        settings = _settings(home)
        broker = broker_name(settings, name)
        fields = key_fields(broker)
        vault, audit = _vault(settings)
        for f in fields:
            value = typer.prompt(f"{broker} {f}", hide_input=True).strip()
            if not value:
                raise ConfigError(f"{broker} {f} is empty: nothing stored")
            vault.put(f"{broker}/{f}", value)
        audit("key_set", ", ".join(f"{broker}/{f}" for f in fields))
        typer.echo(f"stored {', '.join(f'{broker}/{f}' for f in fields)} (encrypted)")
        from workbench.venues import resolve

        venue, inst = resolve(broker)
        if venue.trading_keys is not None and set(venue.required_keys(inst)) - {f"{broker}/{f}" for f in fields}:
            typer.echo(f"next: {venue.hint(inst)}")
    except ValueError as e:
        _fail(ConfigError(str(e)))
    except WorkbenchError as e:
        _fail(e)


@keys_app.command("list")
def keys_list(home: Path | None = HomeOpt) -> None:
    """Your stored key names with their values redacted."""
    from workbench.security.vault import redact

    try:
        vault, _ = _vault(_settings(home))
        names = vault.names()
        if not names:
            typer.echo("(no keys stored: `workbench keys set ccxt:binance`, `workbench keys set kite`, ...)")
        for n in names:
            secret = vault.get(n)
            exp = (
                f"  expires {secret.expires_at.isoformat()}"
                if secret is not None and secret.expires_at is not None
                else ""
            )
            typer.echo(f"{n}  {redact(secret.value if secret is not None else None)}{exp}")
    except WorkbenchError as e:
        _fail(e)


@keys_app.command("delete")
def keys_delete(
    name: str = typer.Argument(..., help="a broker (deletes all its keys) or one key name, e.g. ccxt:binance/secret"),
    home: Path | None = HomeOpt,
) -> None:
    """Delete a broker's keys (or one key) from your vault."""
    try:
        vault, audit = _vault(_settings(home))
        names = [name] if "/" in name else vault.names(f"{name.strip().lower()}/")
        gone = [n for n in names if vault.delete(n)]
        if not gone:
            _fail(ConfigError(f"no stored key matches {name!r}: see `workbench keys list`"))
        audit("key_delete", ", ".join(gone))
        typer.echo(f"deleted {', '.join(gone)}")
    except WorkbenchError as e:
        _fail(e)


@keys_app.command("kite-login")
def keys_kite_login(
    request_token: str | None = typer.Option(
        None, "--request-token", help="skip the prompt (the token from the redirect URL)"
    ),
    home: Path | None = HomeOpt,
) -> None:
    """Zerodha's daily login: open the URL, log in, paste the request_token from the redirect URL."""
    try:
        settings = _settings(home)
        from workbench.venues.kite.broker import complete_kite_login, kite_login_url

        vault, audit = _vault(settings)
        typer.echo(
            f"open this URL, log in, then copy request_token=... from the page it redirects to:\n{kite_login_url(settings, vault)}"
        )
        token = request_token or typer.prompt("request_token", hide_input=True).strip()
        complete_kite_login(settings, token, vault=vault)
        audit("key_set", "kite/access_token")
        typer.echo("kite access token stored (encrypted); Kite expires it daily: log in again each trading day")
    except ImportError as e:
        _fail(ConfigError(f"the Kite adapter is not available in this installation: {e}"))
    except WorkbenchError as e:
        _fail(e)
