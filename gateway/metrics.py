"""Counters and gauges for `GET /metrics` in the Prometheus text format."""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["Metrics"]

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Process-local counters; gauges are read from callbacks when scraped."""

    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = {}
        self._help: dict[str, str] = {}
        self._gauges: list[Callable[[], Iterable[tuple[str, Labels, float]]]] = []

    def describe(self, name: str, text: str) -> None:
        self._help[name] = text

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        series = self._counters.setdefault(name, {})
        key = tuple(sorted(labels.items()))
        series[key] = series.get(key, 0) + amount

    def value(self, name: str, **labels: str) -> float:
        return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0)

    def gauge(self, read: Callable[[], Iterable[tuple[str, Labels, float]]]) -> None:
        self._gauges.append(read)

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(self._counters):
            if name in self._help:
                lines.append(f"# HELP {name} {self._help[name]}")
            lines.append(f"# TYPE {name} counter")
            for labels, value in sorted(self._counters[name].items()):
                lines.append(f"{name}{_fmt(labels)} {value:g}")
        gauges: dict[str, list[str]] = {}
        for read in self._gauges:
            for name, labels, value in read():
                gauges.setdefault(name, []).append(f"{name}{_fmt(labels)} {value:g}")
        for name in sorted(gauges):
            if name in self._help:
                lines.append(f"# HELP {name} {self._help[name]}")
            lines.append(f"# TYPE {name} gauge")
            lines.extend(gauges[name])
        return "\n".join(lines) + "\n"


def _fmt(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"
