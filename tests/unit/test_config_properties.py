"""Property tests of the config loader: whatever the file or environment holds, the only failure
is a ConfigError whose one-line message says where and what."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import tempfile
import typing
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import Config, ConfigError, load_config, parse_config

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOURCE = "gateway.toml"


def known_keys(cls: type[Any]) -> dict[str, Any]:
    """Each key a settings class knows, with its type hint."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: hints[f.name] for f in dataclasses.fields(cls) if not f.metadata.get("internal")
    }


# Text as TOML strings may hold it: any character but surrogates.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
NUMBER_LIKE = st.sampled_from(
    ["+14155550100", "+14155550101", "4155550102", "+442079460001", "12", "", "+1", "abc"]
)
SCALAR = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.sampled_from([0, 1, 59, 60, 65535, 65536, 10**9, 2**63 - 1, -1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
    | NUMBER_LIKE
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.dates()
    | st.times()
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def table_for(cls: type[Any], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Tables with the class's own keys (right or wrong values) and now and then a stray key."""
    keys = known_keys(cls)
    values: dict[str, st.SearchStrategy[Any]] = {}
    for name, hint in keys.items():
        choices: st.SearchStrategy[Any] = VALUE
        if dataclasses.is_dataclass(hint) and depth < 2:
            choices = table_for(typing.cast(type[Any], hint), depth + 1) | VALUE
        elif typing.get_origin(hint) is list:
            (item,) = typing.get_args(hint)
            inner = table_for(item, depth + 1) if dataclasses.is_dataclass(item) else NUMBER_LIKE
            choices = st.lists(inner | VALUE, max_size=3) | VALUE
        values[name] = choices
    return st.fixed_dictionaries({}, optional=values) | st.dictionaries(
        st.sampled_from(sorted(keys)) | TEXT, VALUE, max_size=3
    )


DOCUMENT = table_for(Config) | st.dictionaries(TEXT, VALUE, max_size=4)
ENVIRON = st.dictionaries(
    st.sampled_from(
        [
            "CTGW_HTTP_PORT",
            "CTGW_HTTP_WORKERS",
            "CTGW_STORE_URL",
            "CTGW_AGI_DEADLINE_MS",
            "CTGW_AMI_ENABLED",
            "CTGW_LOG_LEVEL",
            "CTGW_PHONE_DEFAULT_REGION",
            "CTGW_SITES",
            "CTGW_HTTP_NOPE",
            "CTGW_",
            "CTGW_X_Y",
        ]
    )
    | st.from_regex(r"CTGW_[A-Za-z_]{0,12}", fullmatch=True),
    TEXT | st.sampled_from(["0", "1", "-1", "99999", "true", "no", "US", "ZZ", "sqlite:///x"]),
    max_size=4,
)


# Documents that pass the type checks, so the checks of meaning run on odd values.
SECONDS = st.sampled_from([0, 1, 30, 60, 900, 86400, 86401, 10**9, 2**63 - 1]) | st.integers(0)
POOL = st.fixed_dictionaries(
    {"target": NUMBER_LIKE, "numbers": st.lists(NUMBER_LIKE, max_size=3)},
    optional={
        "overflow": NUMBER_LIKE,
        "destination": st.sampled_from(["PJSIP/agent1", "Local/1@x", "PJSIP/a&b"]) | TEXT,
        "heartbeat_seconds": SECONDS,
        "grace_seconds": SECONDS,
        "cooldown_seconds": SECONDS,
        "attribution_window_seconds": SECONDS,
        "probation_seconds": SECONDS,
        "require_params": st.lists(TEXT, max_size=2),
    },
)
STATIC = st.fixed_dictionaries(
    {"number": NUMBER_LIKE, "source": TEXT}, optional={"destination": TEXT, "medium": TEXT}
)
RULE = st.fixed_dictionaries(
    {"number": NUMBER_LIKE, "target": NUMBER_LIKE},
    optional={"param": TEXT, "value": TEXT, "referrer_contains": TEXT},
)
SITE = st.fixed_dictionaries(
    {"key": st.sampled_from(["demo", "a-b", "", "x" * 70, "ü", "a b"]) | TEXT},
    optional={
        "pools": st.lists(POOL, max_size=2),
        "static_numbers": st.lists(STATIC, max_size=2),
        "rules": st.lists(RULE, max_size=2),
        "destination": TEXT,
        "allowed_origins": st.lists(TEXT, max_size=2),
    },
)
WELL_TYPED = st.fixed_dictionaries(
    {"sites": st.lists(SITE, max_size=2)},
    optional={
        "phone": st.fixed_dictionaries(
            {}, optional={"default_region": st.sampled_from(["US", "GB", "ZZ", "", "us"]) | TEXT}
        ),
        "http": st.fixed_dictionaries(
            {}, optional={"port": SECONDS, "workers": SECONDS, "max_body_bytes": SECONDS}
        ),
        "agi": st.fixed_dictionaries({}, optional={"port": SECONDS, "deadline_ms": SECONDS}),
        "ami": st.fixed_dictionaries({}, optional={"port": SECONDS}),
        "store": st.fixed_dictionaries({}, optional={"url": TEXT}),
        "log": st.fixed_dictionaries({}, optional={"level": TEXT, "format": TEXT}),
    },
)


def assert_clear(exc: ConfigError) -> None:
    message = str(exc)
    assert message.startswith((f"{SOURCE}:", "environment variable CTGW_")), message
    assert "\n" not in message and "\r" not in message, message
    assert len(message) < 2000


@SETTINGS
@given(raw=DOCUMENT | WELL_TYPED, environ=ENVIRON)
def test_any_document_loads_or_fails_with_a_clear_config_error(
    raw: dict[str, Any], environ: dict[str, str]
) -> None:
    """A parsed TOML document of any shape, with any overrides, gives a Config or a ConfigError
    on one line naming the file (or the variable); nothing else is ever raised."""
    try:
        config = parse_config(raw, source=SOURCE, environ=environ)
    except ConfigError as exc:
        assert_clear(exc)
    else:
        assert isinstance(config, Config) and config.source == SOURCE


def toml_value(value: Any) -> str:
    """`value` written as TOML (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_string(text: str) -> str:
    # JSON's string escapes are TOML's too, except DEL, which TOML wants escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


@SETTINGS
@given(raw=DOCUMENT | WELL_TYPED)
def test_any_toml_file_loads_or_fails_with_a_clear_config_error(raw: dict[str, Any]) -> None:
    """The same documents written to a file and read back by load_config."""
    text = "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in raw.items())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / SOURCE
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path, environ={})
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith(f"{path}:") and "\n" not in message, message


@SETTINGS
@given(data=st.binary(max_size=300) | TEXT.map(str.encode))
def test_any_bytes_in_the_file_fail_only_with_a_clear_config_error(data: bytes) -> None:
    """Random bytes (not UTF-8, not TOML, or TOML by luck) never raise anything else."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / SOURCE
        path.write_bytes(data)
        try:
            load_config(path, environ={})
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith(f"{path}:") and "\n" not in message, message


def test_ami_port_past_65535_is_refused() -> None:
    """An AMI port no socket can have stops the load, as the HTTP and FastAGI ports do."""
    try:
        parse_config({"ami": {"port": 70000}}, source=SOURCE)
    except ConfigError as exc:
        assert str(exc) == f"{SOURCE}: 'ami.port' must be 0-65535"
    else:
        raise AssertionError("ami.port 70000 was accepted")
