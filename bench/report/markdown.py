"""Blocks (bench/report/blocks.py) written as GitHub Markdown."""
from __future__ import annotations

from tabulate import tabulate

from bench.report.blocks import Block, Code, Heading, Inline, Link, Para, Strong, Table, md_escape


def md_inline(part: Inline) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Code):
        return f"`{part.text.replace('`', '')}`"
    if isinstance(part, Strong):
        return f"**{md_escape(part.text)}**"
    if isinstance(part, Link):
        return f"[{md_escape(part.text)}]({part.href})"
    return md_escape(part.text)


def to_markdown(blocks: list[Block]) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {md_inline(block.text)}")
        elif isinstance(block, Para):
            out.append("".join(md_inline(p) for p in block.parts))
        elif isinstance(block, Table):
            out.append(tabulate([[md_inline(c) for c in row] for row in block.rows],
                                [md_inline(c) for c in block.header], tablefmt="github", disable_numparse=True))
        else:
            out.append(f"![{md_escape(block.alt)}]({block.path})")
    return "\n\n".join(out).rstrip() + "\n"

