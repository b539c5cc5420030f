"""A small reader of the Dockerfile and .dockerignore, enough for the image's own checks.

No Docker engine or hadolint runs on these machines, so the checks parse the files themselves:
instructions with their flags, build stages, and .dockerignore patterns as Docker matches them
(Go's filepath.Match per path segment, `**` for any depth, `!` to re-include).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Instruction",
    "Stage",
    "ignored",
    "parse_dockerfile",
    "parse_ignore",
    "read",
    "stages",
]

_FLAG = re.compile(r"--([a-z-]+)=(\S+)\s+")


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword (upper case), flags (`--from=build`), and the rest."""

    keyword: str
    args: str
    flags: dict[str, str]
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array form (`["a", "b"]`) of the arguments, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"line {self.line}: not a JSON list of strings: {text}")
        return value


@dataclass
class Stage:
    """A build stage: its base image, its name (`AS name`, or its index) and instructions."""

    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by Docker
        if not pending:
            start = number
        # As Docker joins them: the text before the backslash, then the next line untrimmed.
        text = raw.rstrip() if pending else stripped
        if text.endswith("\\"):
            pending += text[:-1]
            continue
        pending += text
        keyword, _, rest = pending.partition(" ")
        flags: dict[str, str] = {}
        rest = rest.strip() + " "
        while match := _FLAG.match(rest):
            flags[match.group(1)] = match.group(2)
            rest = rest[match.end() :]
        out.append(Instruction(keyword.upper(), rest.strip(), flags, start))
        pending = ""
    if pending:
        raise ValueError(f"line {start}: the file ends inside a continued instruction")
    return out


def stages(instructions: list[Instruction]) -> list[Stage]:
    """The build stages in order; instructions before the first FROM (ARG) are left out."""
    result: list[Stage] = []
    for inst in instructions:
        if inst.keyword == "FROM":
            words = inst.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(result))
            result.append(Stage(words[0], name))
        elif result:
            result[-1].instructions.append(inst)
    return result


def parse_ignore(text: str) -> list[str]:
    """The .dockerignore patterns in order (comments and blank lines dropped)."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _matches(pattern: str, path: str) -> bool:
    """Docker's match: the pattern from the context root; a match of a folder covers its files."""
    pattern = pattern.strip("/")
    regex = _segments_regex(pattern.split("/"))
    parts = path.strip("/").split("/")
    return any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1))


def _segments_regex(segments: list[str]) -> re.Pattern[str]:
    out = ""
    for i, segment in enumerate(segments):
        sep = "/" if i < len(segments) - 1 else ""
        if segment == "**":
            out += "(?:[^/]+/)*" if sep else ".*"
            continue
        # fnmatch's translation, limited to one path segment.
        one = fnmatch.translate(segment).removeprefix("(?s:").removesuffix(")\\Z")
        out += one.replace(".*", "[^/]*") + sep
    return re.compile(out)


def ignored(patterns: list[str], path: str) -> bool:
    """Whether `path` (relative to the context) is left out of the build context."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if _matches(pattern.removeprefix("!"), path):
            result = not negate
    return result


def read(path: Path) -> list[Stage]:
    return stages(parse_dockerfile(path.read_text()))
