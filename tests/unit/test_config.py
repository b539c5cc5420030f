"""Config loading: defaults, validation errors naming file and key, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_config_loads() -> None:
    """conf/gateway.toml is a valid config with the demo site and its pool of 10."""
    config = load_config(ROOT / "conf" / "gateway.toml", environ={})
    site = config.sites[0]
    assert [s.key for s in config.sites] == ["demo", "demo-uk"]
    assert site.key == "demo" and len(site.pools[0].numbers) == 10
    assert site.pools[0].overflow and site.static_numbers


def test_defaults_without_file() -> None:
    """Without a file every key has its documented default."""
    config = load_config(None, environ={})
    assert config.agi.deadline_ms == 300 and config.http.port == 8080
    assert config.store.url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[http]\nprot = 1\n", "unknown key 'http.prot'"),
        ("[agi]\ndeadline_ms = 'fast'\n", "'agi.deadline_ms' must be an integer"),
        ("[http]\nport = 70000\n", "'http.port' must be 0-65535"),
        ("[http]\nworkers = 65\n", "'http.workers' must be 0-64"),
        ("[http]\nworkers = -1\n", "'http.workers' must not be negative"),
        ("[nope]\n", "unknown key 'nope'"),
        ("[[sites]]\nname = 'x'\n", "'sites[0].key' is required"),
        (
            "[[sites]]\nkey = 'a'\n[[sites.pools]]\ntarget = '+14155550100'\nnumbers = ['12']\n",
            "'sites[0].pools[0].numbers[0]'",
        ),
        (
            "[[sites]]\nkey = 'a'\n[[sites.pools]]\ntarget = '+14155550100'\n"
            "numbers = ['+14155550101', '+14155550101']\n",
            "already used",
        ),
        ("[log]\nlevel = 'loud'\n", "'log.level'"),
        ("[store]\nurl = 'mysql://x'\n", "'store.url'"),
        ("this is not toml", "not valid TOML"),
        ("[[sites]]\nkey = 'a'\ndestination = 'PJSIP/a&PJSIP/b'\n", "'sites[0].destination'"),
        ("[[sites]]\nkey = 'a'\ndestination = 'PJSIP/a,20,tT'\n", "not a plain dial string"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    """A bad config fails at load with the file name and the offending key."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert str(path) in str(err.value) and fragment in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config path that does not exist says so."""
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml", environ={})


def test_environment_overrides_file(tmp_path: Path) -> None:
    """CTGW_<SECTION>_<KEY> variables override the file, with types checked."""
    path = write(tmp_path, "[http]\nport = 8080\n[ami]\nsecret = 'file'\n")
    config = load_config(
        path,
        environ={"CTGW_HTTP_PORT": "9090", "CTGW_AMI_SECRET": "env", "CTGW_AMI_ENABLED": "true"},
    )
    assert config.http.port == 9090 and config.ami.secret == "env" and config.ami.enabled
    with pytest.raises(ConfigError, match=r"CTGW_HTTP_PORT.*integer"):
        load_config(path, environ={"CTGW_HTTP_PORT": "eighty"})
    with pytest.raises(ConfigError, match=r"unknown key 'http\.colour'"):
        load_config(path, environ={"CTGW_HTTP_COLOUR": "red"})


POOL_TOML = (
    "[[sites]]\nkey = 'a'\n[[sites.pools]]\ntarget = '+14155550100'\nnumbers = ['+14155550101']\n"
)


def _pressure_keys(path: Path) -> tuple[str, int, int, bool]:
    (pool,) = load_config(path, environ={}).sites[0].pools
    return (
        pool.when_exhausted,
        pool.min_cooldown_seconds,
        pool.dial_delay_seconds,
        pool.share_called_numbers,
    )


def test_pool_pressure_keys_default_and_read(tmp_path: Path) -> None:
    """A pool without the pressure keys reuses cooling numbers, rests them at least 0 s under
    pressure, has no dial delay and shares called numbers; each key, given, is read as written."""
    assert _pressure_keys(write(tmp_path, POOL_TOML)) == ("reuse", 0, 0, True)
    given = "when_exhausted = 'overflow'\nmin_cooldown_seconds = 300\ndial_delay_seconds = 10\n"
    given += "share_called_numbers = false\n"
    assert _pressure_keys(write(tmp_path, POOL_TOML + given)) == ("overflow", 300, 10, False)
    shared = _pressure_keys(write(tmp_path, POOL_TOML + "share_called_numbers = true\n"))
    assert shared == ("reuse", 0, 0, True)


@pytest.mark.parametrize(
    ("lines", "key", "fragment"),
    [
        ("when_exhausted = 'wait'\n", "when_exhausted", "must be 'reuse' or 'overflow'"),
        ("when_exhausted = 'Reuse'\n", "when_exhausted", "got 'Reuse'"),
        ("when_exhausted = 1\n", "when_exhausted", "must be a string"),
        ("min_cooldown_seconds = 301\n", "min_cooldown_seconds", "at most cooldown_seconds"),
        (
            "cooldown_seconds = 0\nmin_cooldown_seconds = 1\n",
            "min_cooldown_seconds",
            "at most cooldown_seconds (0)",
        ),
        ("min_cooldown_seconds = -1\n", "min_cooldown_seconds", "must not be negative"),
        ("min_cooldown_seconds = '5'\n", "min_cooldown_seconds", "must be an integer"),
        ("dial_delay_seconds = -10\n", "dial_delay_seconds", "must not be negative"),
        ("dial_delay_seconds = 10.5\n", "dial_delay_seconds", "must be an integer"),
        ("dial_delay_seconds = 1000000000000\n", "dial_delay_seconds", "ten years"),
        ("share_called_numbers = 1\n", "share_called_numbers", "must be true or false"),
        ("share_called_numbers = 'false'\n", "share_called_numbers", "got a string"),
        ("when_exhaused = 'reuse'\n", "when_exhaused", "unknown key"),
    ],
)
def test_bad_pool_pressure_key_is_named(
    tmp_path: Path, lines: str, key: str, fragment: str
) -> None:
    """An unknown choice, a negative or non-integer time, a minimum cooldown past the cooldown,
    a share setting that is not true or false: the error names the file and the pool's key."""
    path = write(tmp_path, POOL_TOML + lines)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    message = str(err.value)
    assert str(path) in message and f"sites[0].pools[0].{key}" in message, message
    assert fragment in message, message
