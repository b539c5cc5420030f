"""`ctgw doctor` checks of Asterisk's own config: manager.conf and extensions.conf.

Warns on what makes AMI dangerous (bound beyond loopback, users with system, command or config
rights) and on what breaks ctgw (no manager user for it, no ctgw dialplan included, click-to-call
through the shipped [ctgw-outbound] without a trunk to dial through).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from gateway.telephony.asterisk_conf import AsteriskConfig, Section, read_config

__all__ = [
    "SHIPPED_OUTBOUND_CONTEXT",
    "Finding",
    "check_asterisk_config",
    "check_extensions_conf",
    "check_manager_conf",
]

# These classes let an AMI client run shell commands (system, command: `!cmd` on the CLI,
# `System()` via Originate) or rewrite config files (config): a stolen login owns the machine.
_DANGEROUS = ("system", "command", "config")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
SHIPPED_OUTBOUND_CONTEXT = "ctgw-outbound"  # dialplans/ctgw.conf's, dialing through the trunk


@dataclass(frozen=True)
class Finding:
    """One result: `level` is `error`, `warning` or `ok`; `code` is stable for scripts."""

    level: str
    code: str
    message: str
    file: str = ""
    line: int = 0


def _is_loopback(address: str) -> bool:
    host = address.strip().strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _classes(value: str | None) -> set[str]:
    return {c.strip().lower() for c in (value or "").split(",") if c.strip()}


def _bind_findings(general: Section | None, path: Path) -> list[Finding]:
    findings: list[Finding] = []
    address = (general.get("bindaddr") if general else None) or "0.0.0.0"  # noqa: S104 - Asterisk's default
    line = general.line_of("bindaddr") if general else 0
    if not _is_loopback(address):
        findings.append(
            Finding(
                "warning",
                "ami_bound_beyond_loopback",
                f"AMI listens on {address}: set `bindaddr = 127.0.0.1` in [general] so only "
                "this machine can reach it",
                str(path),
                line,
            )
        )
    tls = general.get("tlsenable", "no") if general else "no"
    tls_address = (general.get("tlsbindaddr") if general else None) or "0.0.0.0"  # noqa: S104
    if (tls or "").lower() in ("yes", "true", "on", "1") and not _is_loopback(
        tls_address.rsplit(":", 1)[0]
    ):
        findings.append(
            Finding(
                "warning",
                "ami_tls_bound_beyond_loopback",
                f"AMI over TLS listens on {tls_address}: bind it to 127.0.0.1 or turn it off",
                str(path),
                general.line_of("tlsbindaddr") if general else 0,
            )
        )
    return findings


def _user_findings(user: Section, username: str, click_to_call: bool) -> list[Finding]:
    findings: list[Finding] = []
    for direction in ("read", "write"):
        granted = _classes(user.get(direction))
        risky = [c for c in _DANGEROUS if c in granted or "all" in granted]
        if risky:
            findings.append(
                Finding(
                    "warning",
                    "ami_user_dangerous_rights",
                    f"AMI user [{user.name}] has {direction} rights {', '.join(risky)}: "
                    "these allow shell commands or config changes; remove them",
                    str(user.file),
                    user.line_of(direction),
                )
            )
    if user.name != username:
        return findings
    read, write = _classes(user.get("read")), _classes(user.get("write"))
    needed = [("read", "call", read), ("write", "reporting", write)]
    if click_to_call:
        needed.append(("write", "originate", write))
    if not click_to_call and "originate" in write:
        findings.append(
            Finding(
                "warning",
                "ami_user_unneeded_originate",
                f"AMI user [{user.name}] may originate calls but click-to-call is off: "
                "remove `originate` from its write classes",
                str(user.file),
                user.line_of("write"),
            )
        )
    for direction, cls, granted in needed:
        if cls not in granted and "all" not in granted:
            findings.append(
                Finding(
                    "error",
                    "ami_user_missing_right",
                    f"AMI user [{user.name}] lacks {direction} class `{cls}` that ctgw needs",
                    str(user.file),
                    user.line_of(direction),
                )
            )
    return findings


def check_manager_conf(
    path: Path, *, username: str = "ctgw", click_to_call: bool = False
) -> list[Finding]:
    """Findings for manager.conf and the files it includes."""
    if not path.is_file():
        return [Finding("error", "manager_conf_missing", f"{path} not found", str(path))]
    config = read_config(path)
    findings = [Finding("warning", "config_unreadable", e, str(path)) for e in config.errors]
    general = config.section("general")
    enabled = (general.get("enabled", "no") if general else "no") or "no"
    if enabled.lower() not in ("yes", "true", "on", "1"):
        findings.append(
            Finding("error", "ami_disabled", "AMI is off: set `enabled = yes`", str(path))
        )
    findings += _bind_findings(general, path)
    users = [s for s in config.sections if s.name != "general" and not s.is_template]
    for user in users:
        findings += _user_findings(user, username, click_to_call)
    if not any(u.name == username for u in users):
        findings.append(
            Finding(
                "error",
                "ami_user_missing",
                f"no AMI user [{username}] for ctgw: add the one in dialplans/",
                str(path),
            )
        )
    chanvars = _classes(general.get("channelvars") if general else None)
    if "mixmonitor_filename" not in chanvars:
        findings.append(
            Finding(
                "warning",
                "ami_no_recording_variable",
                "`channelvars = MIXMONITOR_FILENAME` is not set in [general]: "
                "call records will have no recording file",
                str(path),
            )
        )
    return findings


def _ctgw_contexts(config: AsteriskConfig) -> set[str]:
    return {s.name for s in config.sections if not s.is_template}


def _trunk_findings(config: AsteriskConfig, path: Path) -> list[Finding]:
    """[ctgw-outbound] dials PJSIP/<number>@${CTGW_OUTBOUND_TRUNK}: empty, nobody is reached."""
    globals_ = config.section("globals")
    if globals_ is not None and (globals_.get("CTGW_OUTBOUND_TRUNK") or "").strip():
        return []
    return [
        Finding(
            "error",
            "ctgw_outbound_trunk_unset",
            "click-to-call is on and dials through [ctgw-outbound], but CTGW_OUTBOUND_TRUNK is "
            "empty or missing in [globals]: set it to your carrier trunk's PJSIP endpoint "
            "(dialplans/ctgw-globals.conf)",
            # The [globals] header: the option may sit in a file it includes.
            str(globals_.file if globals_ is not None else path),
            globals_.line if globals_ is not None else 0,
        )
    ]


def check_extensions_conf(
    path: Path,
    *,
    contexts: tuple[str, ...] = ("ctgw-inbound", "ctgw-lookup"),
    click_to_call: bool = False,
    outbound_context: str = SHIPPED_OUTBOUND_CONTEXT,
) -> list[Finding]:
    """Findings for extensions.conf: is the ctgw dialplan included and complete, and, with
    click-to-call through the shipped outbound context, is its trunk set?"""
    if not path.is_file():
        return [Finding("error", "extensions_conf_missing", f"{path} not found", str(path))]
    config = read_config(path)
    findings = [Finding("warning", "config_unreadable", e, str(path)) for e in config.errors]
    for include in config.includes:
        if "ctgw" in include.path and not include.found:
            findings.append(
                Finding(
                    "error",
                    "ctgw_include_missing_file",
                    f"`#include {include.path}` matches no file",
                    str(include.file),
                    include.line,
                )
            )
    missing = [c for c in contexts if c not in _ctgw_contexts(config)]
    if missing:
        findings.append(
            Finding(
                "error",
                "ctgw_dialplan_missing",
                f"context(s) {', '.join(missing)} not found: add `#include ctgw.conf` "
                "(from dialplans/) to extensions.conf",
                str(path),
            )
        )
    if click_to_call and outbound_context == SHIPPED_OUTBOUND_CONTEXT:
        findings += _trunk_findings(config, path)
    return findings


def check_asterisk_config(
    etc_dir: Path = Path("/etc/asterisk"),
    *,
    username: str = "ctgw",
    click_to_call: bool = False,
    outbound_context: str = SHIPPED_OUTBOUND_CONTEXT,
    contexts: tuple[str, ...] = ("ctgw-inbound", "ctgw-lookup"),
) -> list[Finding]:
    """All Asterisk config findings; an empty list of warnings and errors means all is well."""
    findings = check_manager_conf(
        etc_dir / "manager.conf", username=username, click_to_call=click_to_call
    )
    findings += check_extensions_conf(
        etc_dir / "extensions.conf",
        contexts=contexts,
        click_to_call=click_to_call,
        outbound_context=outbound_context,
    )
    return findings
