"""The report: leaderboard.md, leaderboard.html, docs/findings.md and the submission report, from results/ alone.

    blocks.py    the document model (Heading, Para, Table, Image; User, Code, Strong, Link) and safe links
    markdown.py  blocks -> Markdown            html.py  blocks -> one self-contained HTML page
    rows.py      which stored rows count (current, stale, failed, unavailable metrics)
    stats.py     per-task numbers: means over seeds with Student-t intervals, the native ceiling
    tables.py    the ranking, overview and methods tables     plots.py  the matplotlib figures
    leaderboard.py  the page: build (blocks) and render (files)
    findings.py  docs/findings.md, the papers' claims against results/

The overall ranking (normalised scores, bootstrap intervals, tie groups) is bench/ranking.py.
No module here imports the runner, an encoder or an executor, and matplotlib only when a plot is
drawn. Plug-in registries are read only to tell current rows from stale ones (source hashes) and to
link method cards; at run time bench.task's validation of tasks/ and, for a merging task, the
mergers' registry (bench.merging) still import the encoders and executors.
"""
