"""The store's statements as PostgreSQL takes them: sqlite's `?` placeholders become `$1..$n`."""

from __future__ import annotations

__all__ = ["numbered_placeholders"]

# What a `?` inside of is text, not a placeholder: a string literal, a quoted identifier, a
# comment. (The store's SQL has no dollar-quoted strings and no jsonb `?` operators.)
_CLOSERS = {"'": "'", '"': '"', "--": "\n", "/*": "*/"}


def numbered_placeholders(sql: str) -> str:
    """`sql` with each `?` outside literals, quoted names and comments numbered `$1`, `$2`, ...

    A doubled quote inside a literal (`'it''s'`) closes and reopens it, which scans the same.
    """
    out: list[str] = []
    count = 0
    at = 0
    size = len(sql)
    while at < size:
        char = sql[at]
        opener = sql[at : at + 2] if sql[at : at + 2] in ("--", "/*") else char
        closer = _CLOSERS.get(opener)
        if closer is not None:
            end = sql.find(closer, at + len(opener))
            end = size if end < 0 else end + len(closer)
            out.append(sql[at:end])
            at = end
        elif char == "?":
            count += 1
            out.append(f"${count}")
            at += 1
        else:
            out.append(char)
            at += 1
    return "".join(out)
