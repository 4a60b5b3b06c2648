"""The HTML leaderboard in a real headless Chromium: it loads from disk without errors, a click on
a header sorts, typing in the filter hides rows, and nothing from a submission can run.

Chromium is driven over the DevTools protocol through --remote-debugging-pipe (JSON messages
separated by NUL bytes on file descriptors 3 and 4): no driver binary, no websocket, no pip package.
A missing chromium FAILS these tests (Debian: apt-get install -y chromium); it never skips them.

    python tests/test_html.py [RESULTS_DIR] [PNG]    # re-take docs/leaderboard.png from results/
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--disable-dev-shm-usage",
         "--remote-debugging-pipe"]
HOSTILE_LABEL = "<img src=x onerror=alert(1)>"


def chromium_binary() -> str:
    binary = os.environ.get("BENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        pytest.fail("chromium is not installed, and the HTML leaderboard must be tested in a real browser: "
                    "apt-get install -y chromium chromium-driver (or set BENCH_CHROMIUM to a Chromium binary)")
    return binary


class Browser:
    """A headless Chromium and one page, spoken to over the DevTools pipe."""

    def __init__(self, profile: Path, timeout: float = 30.0):
        self.timeout, self.buffer, self.next_id, self.events = timeout, b"", 0, []
        commands_read, self.commands = os.pipe()
        self.replies, replies_write = os.pipe()

        def child() -> None:  # Chromium reads commands on fd 3 and writes replies on fd 4
            # dup2 onto a fd that differs from the source clears close-on-exec; go via fds >= 10
            # so that the source is never 3 or 4 itself
            high_read = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10)
            high_write = fcntl.fcntl(replies_write, fcntl.F_DUPFD, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self.process = subprocess.Popen([chromium_binary(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        preexec_fn=child, close_fds=False, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_read)
        os.close(replies_write)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            if not select.select([self.replies], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.replies, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe (did it crash?)")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: bool = False) -> dict[str, Any]:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._message(deadline))
        return next(e for e in self.events if e.get("method") == event)

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, path: Path, width: int = 1280, height: int = 1000) -> None:
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=True)
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=True)
        self.wait_for("Page.loadEventFired")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the centre of the element."""
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'center'}});"
                      " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
                      session=True)

    def type(self, text: str) -> None:
        self.call("Input.insertText", {"text": text}, session=True)

    def errors(self) -> list[str]:
        """Uncaught exceptions, console.error calls and error log entries (CSP violations included)."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(json.dumps(params.get("args"))[:500])
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def screenshot(self, path: Path) -> None:
        self.js("window.scrollTo(0, 0)")
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (OSError, EOFError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.commands)
        os.close(self.replies)


@pytest.fixture
def browser(tmp_path):
    session = Browser(tmp_path / "profile")
    yield session
    session.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """A rendered leaderboard of synthetic results, with a hostile method label and card."""
    from bench.report.leaderboard import render
    from bench.method import METHODS
    from bench.results import ResultStore
    from test_ranking import A, B, make_rows, make_task

    folder = tmp_path_factory.mktemp("page")
    task = make_task(folder, "synthetic", metrics="accuracy")
    rows = make_rows(task, {"absolute": lambda s, t, n, seed: 0.1,
                            "ortho": lambda s, t, n, seed: 0.90 - 0.01 * seed,
                            "linear": lambda s, t, n, seed: 0.70 + 0.01 * seed,
                            HOSTILE_LABEL: lambda s, t, n, seed: 0.5 + 0.02 * seed + (0.05 if n == 64 else 0)},
                     native={A: 0.95, B: 0.97}, method_names={HOSTILE_LABEL: "ortho"})
    ResultStore(folder / "results").write(rows)
    out = folder / "site"
    out.mkdir()
    info = METHODS.get("linear")
    with pytest.MonkeyPatch.context() as patch:  # a card as hostile as a pull request can make it
        patch.setattr(info, "card", {**info.card, "title": "<script>document.title='pwned'</script>",
                                     "paper": "javascript:alert(1)", "authors": ["<b>Mallory</b>"]})
        render(folder / "results", out / "leaderboard.md", html=out / "leaderboard.html", tasks=[task])
    return out / "leaderboard.html"


def test_html_is_self_contained_and_escaped(page):
    text = page.read_text(encoding="utf-8")
    assert "<script>document.title" not in text and "&lt;script&gt;document.title" in text
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<b>Mallory" not in text and 'href="javascript:' not in text
    assert 'src="http' not in text and "<link" not in text  # no CDN, no remote anything (paper links are links)
    assert text.count("data:image/png;base64,") == 3  # cost plot, anchor curves, source-by-target matrix


def test_html_in_headless_chromium(page, browser, tmp_path):
    browser.open(page)
    assert browser.errors() == []
    assert browser.js("document.title") == "latent-bench leaderboard"  # the hostile title did not run
    assert browser.js("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    table = "table.board"  # the first one: the overall ranking
    column = lambda i: browser.js(f"Array.from(document.querySelector('{table}').tBodies[0].rows)"
                                  f".filter(r => !r.hidden).map(r => r.cells[{i}].textContent)")
    methods = column(1)
    assert methods[0] == "ortho" and methods[-1] == "absolute" and HOSTILE_LABEL in methods

    browser.click(f"{table} th:nth-child(2)")  # method: alphabetical
    assert column(1) == sorted(methods, key=str.lower)
    browser.click(f"{table} th:nth-child(3)")  # score: ascending numbers, then descending
    scores = [float(s.split()[0]) for s in column(2)]
    assert scores == sorted(scores) and column(1)[0] == "absolute"
    browser.click(f"{table} th:nth-child(3)")
    assert [float(s.split()[0]) for s in column(2)] == sorted(scores, reverse=True)

    browser.click("input.filter")  # the first filter box belongs to the first table
    browser.type("ortho")
    assert column(1) == ["ortho"]
    assert browser.errors() == []
    browser.screenshot(tmp_path / "shot.png")
    assert (tmp_path / "shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def main(argv: list[str]) -> None:
    """Render the leaderboard of a results directory to a temporary folder and screenshot it."""
    from bench.report.leaderboard import render

    results = Path(argv[0] if argv else "results")
    png = Path(argv[1] if len(argv) > 1 else "docs/leaderboard.png")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        render(results, out / "leaderboard.md", html=out / "leaderboard.html")
        session = Browser(out / "profile")
        try:
            session.open(out / "leaderboard.html", width=1280, height=1000)
            if session.errors():
                sys.exit(f"page errors: {session.errors()}")
            png.parent.mkdir(parents=True, exist_ok=True)
            session.screenshot(png)
        finally:
            session.close()
    print(f"wrote {png}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(sys.argv[1:])
