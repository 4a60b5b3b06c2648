"""docs/findings.md: generated from results/ alone; the committed copy must match."""
from bench.report.findings import render_findings
from support import REPO


def test_committed_findings_match_results(tmp_path):
    """Run `bench leaderboard` (it writes docs/findings.md) and commit both when this fails."""
    text = render_findings(REPO / "results", tmp_path / "findings.md")
    assert text == (REPO / "docs" / "findings.md").read_text(encoding="utf-8")
    for claim in ("absolute", "ortho", "saturates", "Standard scaling", "irp"):
        assert claim in text
