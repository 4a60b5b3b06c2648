"""The document model shared by every writer (bench/report/markdown.py, bench/report/html.py).

A page is a list of blocks (headings, paragraphs, tables, images). Text that comes from submissions
or task files is wrapped in `User` so that each writer escapes it its own way; a plain str is our
own text, safe in Markdown.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import quote


@dataclass(frozen=True)
class User:
    """Text from a submission or a task file: escaped by every renderer."""
    text: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Link:
    text: str  # escaped like User
    href: str  # checked by safe_href before it is built


Inline: TypeAlias = str | User | Code | Strong | Link  # a plain str is our own text, safe in Markdown


@dataclass
class Heading:
    level: int
    text: Inline


@dataclass
class Para:
    parts: Sequence[Inline]  # Sequence, not list: a list[str] is a paragraph too


@dataclass
class Table:
    header: Sequence[Inline]  # Sequence, not list: a list[str] is a table row too
    rows: Sequence[Sequence[Inline]]


@dataclass
class Image:
    path: str  # relative to the output's folder
    alt: str
    file: Path | None = None  # where to read it from, when that is not beside the output (results/grids)


Block: TypeAlias = Heading | Para | Table | Image


def md_escape(text: str) -> str:
    """Text from submissions or tasks, made inert in Markdown and HTML."""
    text = re.sub(r"[\r\n]+", " ", str(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)


def safe_href(url: Any) -> str | None:
    """A link target that cannot run code: http(s) URLs and relative paths only (no javascript:)."""
    url = str(url or "").strip()
    if re.match(r"^https?://[^\s]+$", url) or re.match(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$", url):
        return quote(url, safe=":/#?&=%@+,;~-._")  # no quotes, spaces or parentheses survive
    return None


def link_or_text(text: str, url: Any) -> Inline:
    href = safe_href(url)
    return Link(text, href) if href else User(text)

