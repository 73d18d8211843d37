"""Typed settings: defaults here, overridden by ``$WORKBENCH_HOME/workbench.toml``, then env vars.

Env vars use the prefix ``WORKBENCH_`` and ``__`` for nesting, e.g. ``WORKBENCH_RISK__MIN_STRENGTH=0.8``.
Nothing is global: ``load_settings()`` returns a frozen object that callers pass along, so tests and
notebooks can hold several workbenches (homes) side by side.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from workbench.errors import ConfigError

__all__ = [
    "RiskLimits",
    "SignalParams",
    "CostModel",
    "PaperAccount",
    "DemoSettings",
    "LiveSettings",
    "RetrainSettings",
    "BrokerSettings",
    "SecuritySettings",
    "CalendarSettings",
    "Settings",
    "default_home",
    "load_settings",
    "store_only_settings",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RiskLimits(_Frozen):
    """DESIGN.md §5 defaults; each user may override them."""

    max_position_pct: float = Field(0.10, gt=0, le=1, description="max share of equity in one position")
    max_daily_loss_pct: float = Field(0.05, gt=0, le=1, description="no new entries after this loss today")
    min_strength: float = Field(0.70, ge=0, le=1, description="trade only signals stronger than this")
    risk_per_trade_pct: float = Field(0.01, gt=0, le=1, description="equity lost if the stop is hit")
    flatten_on_emergency: bool = Field(False, description="emergency stop also closes positions")


class SignalParams(_Frozen):
    """How model probabilities become signals; stops come from ATR (DESIGN.md §4)."""

    atr_window: int = Field(14, ge=2)
    target_atr: float = Field(1.0, gt=0, description="target price = close ± this × ATR")
    stop_atr: float = Field(2.0, gt=0, description="stop-loss = close ∓ this × ATR")
    take_profit_atr: float = Field(3.0, gt=0, description="take-profit = close ± this × ATR")
    hold_below: float = Field(0.5, ge=0, le=1, description="signals weaker than this are HOLD")


class CostModel(_Frozen):
    fee_rate: float = Field(0.001, ge=0, lt=0.1, description="fee as a fraction of notional")
    slippage_bps: float = Field(5.0, ge=0, description="adverse price move per market order, basis points")


class PaperAccount(_Frozen):
    starting_cash: float = Field(100_000.0, gt=0)
    max_volume_share: float = Field(0.10, gt=0, le=1, description="fills capped at this share of bar volume")
    currency: str = Field("USD", description="the account (and portfolio base) currency")
    extra_cash: dict[str, float] = Field(
        default_factory=dict, description="other currencies held, e.g. {'INR': 500000}"
    )
    exchange_costs: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="per exchange (fee_rate, slippage_bps), overriding `costs`"
    )

    @field_validator("exchange_costs")
    @classmethod
    def _costs_are_sane(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for exch, (fee, slip) in v.items():
            try:
                CostModel(fee_rate=fee, slippage_bps=slip)
            except ValidationError as e:
                raise ValueError(
                    f"exchange_costs[{exch!r}] = ({fee}, {slip}) is not (fee_rate in [0, 0.1), "
                    f"slippage_bps >= 0): {e.errors()[0]['loc'][0]} {e.errors()[0]['msg']}"
                ) from None
        return v

    def cost_models(self) -> dict[str, CostModel]:
        """``exchange_costs`` as ``CostModel`` values: the risk rules size a buy with the costs of the
        exchange it trades on, as the venue will charge them."""
        return {k: CostModel(fee_rate=f, slippage_bps=s) for k, (f, s) in self.exchange_costs.items()}


class DemoSettings(_Frozen):
    """The data `make run` pulls for a first look when the user has not chosen any.

    Online: the ``ccxt_top_n`` most traded ``ccxt_quote`` spot pairs of ``ccxt_exchange`` (ranked by
    24 h quote volume from one ``fetch_tickers`` call, stablecoins and leveraged tokens left out), on
    ``ccxt_timeframe`` bars. Why 5m by default: the paper loop runs every 30 s and builds the forming
    bar from live ticks; a 5-minute bar moves visibly within a few cycles and closes every ten, while a
    daily bar barely changes in a session and would show a user almost nothing. Offline: a labelled
    synthetic market of ``synthetic_symbols`` on ``timeframe`` bars whose returns carry a planted
    short-term momentum (``synthetic_structure``), so a model has something real to learn and trades
    (pure GBM has nothing, and the demo model then never leaves its base rate).
    """

    source: Literal["auto", "ccxt", "synthetic"] = "auto"
    ccxt_exchange: str = "binance"
    ccxt_symbols: tuple[str, ...] = Field(
        ("BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT"),
        description="pairs pulled when ccxt_top_n is 0 or the exchange's tickers cannot be ranked",
    )
    ccxt_top_n: int = Field(250, ge=0, description="pairs ranked by 24 h quote volume (0: ccxt_symbols only)")
    ccxt_quote: str = Field("USDT", description="quote currency of the ranked pairs")
    ccxt_timeframe: str = Field("5m", description="bar of the online demo (see the class doc)")
    synthetic_symbols: tuple[str, ...] = Field(
        default_factory=lambda: tuple(f"SYN-{i:03d}" for i in range(1, 151)),
        description="instruments of the offline synthetic market",
    )
    synthetic_structure: float = Field(
        0.08,
        ge=-0.9,
        le=0.9,
        description="lag-1 autocorrelation planted in synthetic returns (0: pure GBM); the default stays "
        "under the training's look-ahead check (a next-bar IC above 0.1 is refused as a leak)",
    )
    timeframe: str = "1d"
    bars: int = Field(1000, ge=200, description="history length to pull")
    network_timeout_s: float = Field(3.0, gt=0)
    seed: int = 42


class LiveSettings(_Frozen):
    interval_s: float = Field(30.0, gt=0)
    replay_bars: int = Field(120, ge=1, description="bars replayed by the paper loop when offline")
    warmup_bars: int = Field(100, ge=30, description="history fed to the features each cycle")
    stale_after_s: float = Field(120.0, gt=0)
    unknown_grace_s: float = Field(
        60.0, ge=0, description="how long an order the venue does not know is given before it is declared dead"
    )
    fx_rates: dict[str, float] = Field(
        default_factory=lambda: {"USDT": 1.0, "USDC": 1.0},
        description="units of the base currency per unit of another currency",
    )
    breaker_failures: int = Field(
        3, ge=1, description="temporary venue failures in a row (after the adapter's retries) that open its breaker"
    )
    breaker_cooldown_s: float = Field(
        30.0, ge=0, description="how long an open circuit breaker keeps calls off the venue before one probe"
    )
    store_retry_s: float = Field(
        30.0, ge=0, description="how long a run whose store cannot be written keeps trying to record FAILED"
    )
    feed: Literal["live", "replay", "auto"] = Field(
        "live",
        description="what a run trades when neither --live nor --replay is given: live market data, a "
        "replay of the lake's last bars (labelled REPLAY), or auto (`make run`'s demo): live when probe_url "
        "answers and every exchange of the universe has a data venue, else a REPLAY saying why",
    )
    data_venues: dict[str, str] = Field(
        default_factory=dict,
        description="exchange → venue whose market data a live run reads for it (kite | alpaca | ccxt:<id>); "
        "unlisted: NSE/BSE → kite, US exchanges → alpaca, a ccxt exchange id → ccxt:<that id>",
    )
    bar_lateness_s: float = Field(2.0, ge=0, description="how long a bar stays open to late ticks after its end")
    probe_url: str = Field(
        "https://api.binance.com/api/v3/ping",
        description="feed = auto probes this public endpoint: it answers → live data, else a REPLAY",
    )
    probe_timeout_s: float = Field(3.0, gt=0)

    @field_validator("data_venues")
    @classmethod
    def _venues_known(cls, v: dict[str, str]) -> dict[str, str]:
        from workbench.live.router import check_venue

        return {str(k).upper(): check_venue(str(x)) for k, x in v.items()}


class RetrainSettings(_Frozen):
    """Scheduled retraining: what to train and how much better a challenger must be to be promoted."""

    kinds: tuple[str, ...] = ("lgbm",)
    n_folds: int = Field(3, ge=1)
    # Only sound metrics (models.evaluation.PROMOTABLE): fold means and the mean *daily* rank IC
    # (ic_mean) or its t-statistic; a rank IC pooled over dates mixes timing with selection.
    promote_metric: Literal["auc", "log_loss", "brier", "accuracy", "ic_mean", "ic_t"] = "auc"
    promote_margin: float = Field(0.005, description="challenger must beat the champion by more than this")
    cron: str = Field("0 6 * * 1-5", description="crontab expression for `workbench scheduler`")
    timeout_s: float = Field(3600.0, gt=0, description="papermill cell timeout")


class ResearchSettings(_Frozen):
    """Where research fans out: a Dask scheduler's address for a team's cluster, else a LocalCluster here."""

    scheduler: str | None = Field(None, description="Dask scheduler address (tcp://host:8786); none: a LocalCluster")
    workers: int = Field(2, ge=1, description="LocalCluster worker processes when no scheduler is given")
    lake_url: str | None = Field(
        None,
        description="the lake Dask workers read: an object-store URL (s3://bucket/prefix, filled by "
        "workbench.data.lake_url.publish) or a path every worker sees; none: this home's lake",
    )


class BrokerSettings(_Frozen):
    """Which venue the live loop trades on, and how to reach it. Paper is the default; a real broker
    needs ``--broker``/``default`` set explicitly, runs on its testnet/paper endpoint unless
    ``testnet`` is turned off, and a live (real-money) venue also needs the user's ``trade_live``
    permission (``workbench users grant``; checked by Phase 1). What is
    particular to one venue (Kite's product, ccxt's options, Alpaca's URL) is its ``[venues.<name>]``
    table, validated by that venue's config class (``workbench.venues.<name>.config``)."""

    default: str = Field("paper", description="a registered venue: paper | ccxt:<exchange id> | kite | alpaca")
    testnet: bool = Field(True, description="use the venue's sandbox/testnet/paper endpoint")
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout per broker request")
    currency: str | None = Field(
        None, description="account currency at the venue (default: USDT on ccxt, INR on Kite, USD on Alpaca)"
    )


class SecuritySettings(_Frozen):
    """Sessions and logins (see workbench/security/users.py)."""

    session_idle_minutes: float = Field(12 * 60, gt=0, description="a session unused this long ends")
    session_absolute_hours: float = Field(7 * 24, gt=0, description="a session ends this long after login, used or not")
    min_password_length: int = Field(10, ge=8)
    lockout_after: int = Field(5, ge=1, description="failed logins in a row before the account locks")
    lockout_base_s: float = Field(30.0, gt=0, description="first lockout; doubles with each further failure")
    lockout_max_s: float = Field(3600.0, gt=0)


class CalendarSettings(_Frozen):
    """Exchange calendars (``workbench.data.calendars``): holidays the installed ``exchange_calendars``
    does not record yet (e.g. NSE/BSE after its last holiday year), honoured by the live loop's open
    check, the gap finder and the time features through ``Calendars.from_settings(settings)`` (a value
    passed to them, never process state). Per exchange as named in instrument keys: NSE and BSE
    share a calendar but each gets only its own extra holidays."""

    extra_holidays: dict[str, tuple[date, ...]] = Field(
        default_factory=dict,
        description='exchange → extra holiday dates, e.g. {NSE = ["2027-01-26"], BSE = ["2027-01-26"]}',
    )

    @field_validator("extra_holidays", mode="before")
    @classmethod
    def _known_dates(cls, v: Any) -> dict[str, tuple[date, ...]]:
        from workbench.data.calendars import parse_extra_holidays

        try:
            return parse_extra_holidays(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WORKBENCH_", env_nested_delimiter="__", frozen=True, extra="forbid")

    home: Path
    model_name: str = "workbench"
    risk: RiskLimits = RiskLimits()
    signals: SignalParams = SignalParams()
    costs: CostModel = CostModel()
    paper: PaperAccount = PaperAccount()
    demo: DemoSettings = DemoSettings()
    live: LiveSettings = LiveSettings()
    retrain: RetrainSettings = RetrainSettings()
    research: ResearchSettings = ResearchSettings()
    broker: BrokerSettings = BrokerSettings()
    venues: dict[str, Any] = Field(
        default_factory=dict, description="per venue: its [venues.<name>] table, validated by the venue's config class"
    )
    security: SecuritySettings = SecuritySettings()
    calendars: CalendarSettings = CalendarSettings()
    db_url: str | None = Field(None, description="SQLAlchemy URL of the operational store")
    mlflow_uri: str | None = Field(None, description="MLflow tracking URI")
    research_data_dir: Path | None = Field(
        None,
        description="a folder of saved market data laid out like the project's shared/data "
        "(us_equities/sp500_5yr_kaggle_cnuge/<SYMBOL>_data.csv, instruments/): the notebooks research on it "
        "when it is there, else on the demo data; env WORKBENCH_RESEARCH_DATA_DIR",
    )

    @field_validator("home")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return Path(v).expanduser().resolve()

    @field_validator("venues", mode="before")
    @classmethod
    def _venue_tables(cls, v: Any) -> dict[str, Any]:
        """Each ``[venues.<name>]`` table checked by its venue's config class, so a bad value is named
        (``venues.kite.product``) when the settings load, not when the venue is first used."""
        from workbench.venues import VENUES, parse_venue_config, venue_choices

        if not isinstance(v, dict):
            raise ValueError(f"venues must be a table of [venues.<name>] tables, not {v!r}")
        out = {}
        for name, table in v.items():
            if name not in VENUES:
                raise ValueError(f"venues.{name}: no such venue (registered: {venue_choices()})")
            try:
                out[name] = parse_venue_config(name, table)
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return out

    @field_validator("research_data_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("research_data_dir")
    @classmethod
    def _relative_to_home(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        """A relative path in workbench.toml means one beside the home, wherever the process runs."""
        if v is None:
            return None
        v = Path(v).expanduser()
        home = info.data.get("home")
        return (v if v.is_absolute() or home is None else Path(home) / v).resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Order is priority: explicit arguments, then env vars, then the home's TOML file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    # Paths derived from home, never stored twice.
    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def mlruns_dir(self) -> Path:
        return self.home / "mlruns"

    @property
    def numba_cache_dir(self) -> Path:
        """Compiled numba kernels (``workbench.warmup``): built at ``workbench init``, loaded after."""
        return self.home / ".cache" / "numba"

    @property
    def store_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'workbench.db'}"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_uri or f"sqlite:///{self.mlruns_dir / 'mlflow.db'}"

    @property
    def remote_tracking(self) -> bool:
        """MLflow is a team's tracking server (``workbench mlflow serve``), not this home's files."""
        return bool(self.mlflow_uri) and str(self.mlflow_uri).startswith(("http://", "https://"))

    @property
    def artifact_root(self) -> str | None:
        """Where new experiments keep artifacts: under the home, or wherever the tracking server says."""
        return None if self.remote_tracking else (self.mlruns_dir / "artifacts").as_uri()

    def ensure_dirs(self) -> list[str]:
        """The home's stores, private to their owner (``workbench.security.perms``): what had to be
        tightened in an older home (empty when already private)."""
        from workbench.security.perms import secure_home

        mlflow_db = None if self.mlflow_uri else self.tracking_uri
        return secure_home(
            self.home,
            (self.data_dir, self.lake_dir, self.data_dir / "logs", self.mlruns_dir),
            (self.store_url, mlflow_db),
            (self.home / ".session", self.home / "keys" / "master.key", self.home / "keys" / "master.key.next"),
        )


def default_home() -> Path:
    """``$WORKBENCH_HOME``, else the repo root of an editable install, else ``~/.workbench``."""
    env = os.environ.get("WORKBENCH_HOME")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").exists():
        return repo
    return Path.home() / ".workbench"


def load_settings(home: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings for one workbench home; keyword overrides win over env vars and the TOML file.

    A wrong setting raises ``ConfigError`` with one paragraph naming the file (or env var), the
    setting and what to do; an unreadable file raises the ``OSError``. Nothing is installed process-wide:
    the ``[calendars]`` extra holidays reach the calendar as ``Calendars.from_settings(settings)``."""
    home_path = Path(home) if home is not None else default_home()
    toml = home_path / "workbench.toml"

    class _HomeSettings(Settings):
        model_config = SettingsConfigDict(toml_file=toml if toml.exists() else None)

    try:
        values = _HomeSettings(home=home_path, **overrides)
        settings = Settings.model_construct(**dict(values))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{toml} is not valid TOML: {e}. Fix that line (e.g. quote text values, one `key = value` per line) "
            f"and run the command again. {EMERGENCY_NOTE}"
        ) from e
    except ValidationError as e:
        raise ConfigError(_explain(e, toml)) from e
    return settings


EMERGENCY_NOTE = "Meanwhile `workbench live emergency-stop` still works."


def _source_of(loc: tuple[Any, ...], toml: Path) -> str:
    env = "WORKBENCH_" + "__".join(str(p) for p in loc).upper()
    if env in os.environ:
        return f"env var {env}"
    return str(toml) if toml.exists() else "the settings"


def _known_fields(loc: tuple[Any, ...]) -> list[str]:
    """The settings allowed beside an unknown key (for a "did you mean" list)."""
    model: Any = Settings
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return sorted(getattr(model, "model_fields", {}))


def _explain(e: ValidationError, toml: Path) -> str:
    """One paragraph: each wrong setting (at most three), where it came from, and what to do."""
    parts, sources = [], []
    for err in e.errors()[:3]:
        loc = tuple(err["loc"])
        name = ".".join(str(p) for p in loc)
        sources.append(_source_of(loc, toml))
        if err["type"] == "extra_forbidden":
            known = _known_fields(loc)
            hint = f" (the settings there: {', '.join(known)})" if known else ""
            parts.append(f"unknown setting {name!r}{hint}")
        else:
            parts.append(f"{name} = {err.get('input')!r}: {err['msg']}")
    more = f" and {e.error_count() - 3} more" if e.error_count() > 3 else ""
    where = ", ".join(dict.fromkeys(sources))
    return (
        f"invalid settings in {where}: {'; '.join(parts)}{more}. Fix {'them' if len(parts) > 1 else 'it'} "
        f"(remove or correct the line) and run the command again. {EMERGENCY_NOTE}"
    )


def store_only_settings(home: Path | str | None = None) -> Settings:
    """Default settings except the home and the store URL (``WORKBENCH_DB_URL``, else ``db_url`` from
    the TOML file when it still parses): what the emergency stop needs to reach the live run's store
    while the settings file is broken."""
    home_path = Path(home) if home is not None else default_home()
    db_url = os.environ.get("WORKBENCH_DB_URL")
    if db_url is None:
        try:
            raw = tomllib.loads((home_path / "workbench.toml").read_text())
            db_url = raw.get("db_url") if isinstance(raw.get("db_url"), str) else None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            db_url = None
    return Settings.model_construct(home=home_path.expanduser().resolve(), db_url=db_url)
