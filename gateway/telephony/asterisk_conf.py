"""A reader for Asterisk's own INI-like config files (manager.conf, extensions.conf).

Covers what Asterisk's config loader does and pyst2's `asterisk.config` does not: `#include` and
`#tryinclude` (with globs, relative to the config dir), `;--  --;` block comments, `\\;`
escapes, `=>`, and section templates `[name](!)`, `[name](tmpl)` and `[name](+)`.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AsteriskConfig", "Include", "Section", "read_config"]

_HEADER = re.compile(r"^\[(?P<name>[^\]]+)\]\s*(\((?P<opts>[^)]*)\))?\s*$")
_DIRECTIVE = re.compile(r"^#\s*(?P<kind>include|tryinclude|exec)\s+(?P<arg>.+?)\s*$", re.I)
_MAX_DEPTH = 10
_MAX_BYTES = 4 * 1024 * 1024


@dataclass
class Section:
    """One `[name]` section; `options` in file order, inherited template options first."""

    name: str
    file: Path
    line: int
    is_template: bool = False
    options: list[tuple[str, str, int]] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value of `key`, as Asterisk's single-valued options take the last one."""
        found = [v for k, v, _ in self.options if k.lower() == key.lower()]
        return found[-1] if found else default

    def line_of(self, key: str) -> int:
        lines = [n for k, _, n in self.options if k.lower() == key.lower()]
        return lines[-1] if lines else self.line


@dataclass(frozen=True)
class Include:
    path: str
    file: Path
    line: int
    found: tuple[Path, ...]


@dataclass
class AsteriskConfig:
    sections: list[Section] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name and not s.is_template), None)


def _strip_comment(line: str, in_block: bool) -> tuple[str, bool]:
    """Remove `;` comments and `;-- --;` blocks; returns the text and whether a block is open."""
    out: list[str] = []
    i = 0
    while i < len(line):
        if in_block:
            end = line.find("--;", i)
            if end < 0:
                return "".join(out), True
            i, in_block = end + 3, False
            continue
        ch = line[i]
        if ch == "\\" and line[i + 1 : i + 2] == ";":
            out.append(";")
            i += 2
        elif line.startswith(";--", i):
            in_block, i = True, i + 3
        elif ch == ";":
            break
        else:
            out.append(ch)
            i += 1
    return "".join(out), in_block


def _resolve(arg: str, base: Path) -> list[Path]:
    name = arg.strip().strip('"').strip("<>").strip()
    pattern = name if name.startswith("/") else str(base / name)
    return [Path(p) for p in sorted(glob.glob(pattern))]


def _read(path: Path, base: Path, config: AsteriskConfig, depth: int, seen: set[Path]) -> None:
    if depth > _MAX_DEPTH or path.resolve() in seen:
        config.errors.append(f"{path}: include loop or nesting deeper than {_MAX_DEPTH}")
        return
    seen = seen | {path.resolve()}
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_BYTES + 1)
    except OSError as exc:
        config.errors.append(f"{path}: {exc.strerror or exc}")
        return
    if len(raw) > _MAX_BYTES:
        config.errors.append(f"{path}: larger than {_MAX_BYTES} bytes, not read")
        return
    in_block = False
    current = config.sections[-1] if config.sections else None
    for number, text in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        stripped = text.strip()
        directive = _DIRECTIVE.match(stripped) if not in_block else None
        if directive:
            kind, arg = directive.group("kind").lower(), directive.group("arg")
            if kind == "exec":
                config.includes.append(Include(arg, path, number, ()))
                continue
            found = _resolve(arg, base)
            config.includes.append(Include(arg, path, number, tuple(found)))
            for child in found:
                _read(child, base, config, depth + 1, seen)
            current = config.sections[-1] if config.sections else None
            continue
        body, in_block = _strip_comment(text, in_block)
        body = body.strip()
        if not body:
            continue
        header = _HEADER.match(body)
        if header:
            current = _open_section(config, header, path, number)
            continue
        key, sep, value = body.partition("=")
        if not sep or current is None:
            config.errors.append(f"{path}:{number}: not 'key = value' inside a section")
            continue
        current.options.append((key.strip(), value.lstrip(">").strip(), number))


def _open_section(config: AsteriskConfig, header: re.Match[str], path: Path, line: int) -> Section:
    name = header.group("name").strip()
    opts = [o.strip() for o in (header.group("opts") or "").split(",") if o.strip()]
    if "+" in opts:  # `(+)` adds to the section defined earlier
        earlier = next((s for s in reversed(config.sections) if s.name == name), None)
        if earlier is not None:
            return earlier
    section = Section(name, path, line, is_template="!" in opts)
    for template in (o for o in opts if o not in ("!", "+")):
        base = next((s for s in reversed(config.sections) if s.name == template), None)
        if base is None:
            config.errors.append(f"{path}:{line}: template [{template}] not defined before use")
        else:
            section.options.extend(base.options)
    config.sections.append(section)
    return section


def read_config(path: Path, base: Path | None = None) -> AsteriskConfig:
    """Read `path` and everything it includes; relative includes resolve against `base`
    (Asterisk's config directory, by default the file's own directory)."""
    config = AsteriskConfig()
    _read(path, base or path.parent, config, 0, set())
    return config
