"""The leaderboard as one self-contained HTML file: opens from disk, no server, no network.

Tables sort when a header is clicked and filter as one types; plots are embedded as base64 PNG;
the script and styles are inline (a CDN would break offline use and leak the reader's visits).
Every piece of text goes through html.escape, submission-provided or not; our own prose may use
`code` and **strong** markup, converted only after escaping.
"""
from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

from bench.report.blocks import Block, Code, Heading, Inline, Link, Para, Strong, Table

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #1f2328; }
h1, h2, h3 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
code { background: #f0f2f4; padding: 0 .3em; border-radius: 4px; }
table { border-collapse: collapse; margin: .3em 0 1.2em; }
th, td { border: 1px solid #d0d7de; padding: 3px 9px; text-align: left; white-space: nowrap; }
th { background: #f6f8fa; cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
tr:nth-child(even) td { background: #fafbfc; }
input.filter { margin-top: .6em; padding: 3px 6px; width: 18em; }
img { max-width: 100%; display: block; margin: .5em 0 1.5em; }
"""  # noqa: E501  (written verbatim into every leaderboard page: rewrapping would change the output)

# Sort: numbers (the leading number of "0.912 ± 0.010") numerically, the rest as text, blanks
# ("–") last in both directions. Filter: hide rows whose text lacks every typed word.
SCRIPT = """
"use strict";
function cellKey(td) {
  const text = td.textContent.trim();
  const number = parseFloat(text);
  return { blank: text === "" || text === "\\u2013", number: isNaN(number) ? null : number, text: text.toLowerCase() };
}
function sortTable(table, column, th) {
  const descending = th.getAttribute("aria-sort") === "ascending";
  table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellKey(a.cells[column]), y = cellKey(b.cells[column]);
    if (x.blank || y.blank) return x.blank - y.blank;
    let order = (x.number !== null && y.number !== null) ? x.number - y.number : x.text.localeCompare(y.text);
    return descending ? -order : order;
  });
  rows.forEach(row => body.appendChild(row));
}
function filterTable(table, query) {
  const words = query.toLowerCase().split(/\\s+/).filter(Boolean);
  for (const row of table.tBodies[0].rows) {
    const text = row.textContent.toLowerCase();
    row.hidden = !words.every(word => text.includes(word));
  }
}
document.querySelectorAll("table.board").forEach(table => {
  table.querySelectorAll("th").forEach((th, column) => th.addEventListener("click", () => sortTable(table, column, th)));
  const input = document.createElement("input");
  input.type = "search";
  input.className = "filter";
  input.placeholder = "filter rows";
  input.addEventListener("input", () => filterTable(table, input.value));
  table.before(input);
});
"""  # noqa: E501  (as STYLE)


def inline(part: Inline) -> str:
    if isinstance(part, str):  # our own prose: escape, then turn its `code` and **strong** into tags
        text = html.escape(part)
        text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
        return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    if isinstance(part, Code):
        return f"<code>{html.escape(part.text)}</code>"
    if isinstance(part, Strong):
        return f"<strong>{html.escape(part.text)}</strong>"
    if isinstance(part, Link):  # href passed blocks.safe_href: http(s) or a relative path
        return f'<a href="{html.escape(part.href, quote=True)}">{html.escape(part.text)}</a>'
    return html.escape(str(part.text))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def block_html(block: Block, image_root: Path) -> str:
    if isinstance(block, Heading):
        title = inline(block.text)
        anchor = slug(block.text if isinstance(block.text, str) else block.text.text)  # every Inline but str has .text
        return f'<h{block.level} id="{anchor}">{title}</h{block.level}>'
    if isinstance(block, Para):
        return f"<p>{''.join(inline(p) for p in block.parts)}</p>"
    if isinstance(block, Table):
        head = "".join(f'<th scope="col">{inline(c)}</th>' for c in block.header)
        body = "\n".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in block.rows)
        return f'<table class="board">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'
    path = block.file or image_root / block.path
    if not path.is_file():  # rendered without plots
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(block.alt, quote=True)}" src="data:image/png;base64,{data}">'


def csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def to_html(blocks: list[Block], image_root: Path) -> str:
    """The page; images are read from image_root / Image.path and embedded."""
    body = "\n".join(filter(None, (block_html(b, image_root) for b in blocks)))
    # Content-Security-Policy: no network at all (the page must look the same offline), and only
    # our own script and style run, by hash: defence in depth should escaping ever miss something.
    policy = f"default-src 'none'; img-src data:; style-src {csp_hash(STYLE)}; script-src {csp_hash(SCRIPT)}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n"
            f"<title>latent-bench leaderboard</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
            f"<script>{SCRIPT}</script>\n</body>\n</html>\n")
