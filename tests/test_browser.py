"""The reports as a release manager sees them: rendered by headless Chromium.

The sign-off page is built from sign-off inputs (a NO-GO with a failed cell, notes and a
not-covered section; and a GO), then Chromium parses it (``--dump-dom``: the DOM after the
browser's own HTML parser, so markup mistakes show) and paints it (``--screenshot``: the
verdict band and the matrix cells must come out in their colours). The Allure 3 report is
opened the same way when one was built (``make signoff report``): one file, from disk.

Needs /usr/bin/chromium (Debian package ``chromium``; ``.ci/browser`` installs it).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from talkqa.checks import Finding
from talkqa.promises import promise
from talkqa.report.environment import categories
from talkqa.report.signoff import (
    SectionInfo,
    SignoffInput,
    write_signoff,
)
from tests.signoff_inputs import CUSTOMERS, DOC, ORDERS, mismatch, outcome

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
ADDRESS = "Chargebee Address to Invoiced Customers (organisation data)"
# the sign-off's own colours (talkqa/report/signoff.py _CSS)
NOGO_BAND = (0xFC, 0xE8, 0xE6)
GO_BAND = (0xE6, 0xF4, 0xEA)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(
            "/usr/bin/chromium is absent: install it (`apt-get install -y chromium`, "
            "or run .ci/browser) to look at the reports in a browser"
        )
    return CHROMIUM


def browse(chromium: Path, url: str, where: Path, *action: str) -> str:
    """Run headless Chromium once on ``url`` with a fresh profile; its stdout."""
    profile = where / f"profile-{len(list(where.glob('profile-*')))}"
    done = subprocess.run(
        [str(chromium), *FLAGS, f"--user-data-dir={profile}", *action, url],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, "HOME": str(where)},
    )
    assert done.returncode == 0, f"chromium exit {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def screenshot(chromium: Path, url: str, where: Path, name: str, *extra: str) -> Path:
    shot = where / f"{name}.png"
    browse(chromium, url, where, "--window-size=1280,1400", f"--screenshot={shot}", *extra)
    assert shot.is_file() and shot.stat().st_size > 10_000, f"no screenshot of {url}"
    return shot


# --- the screenshots' pixels (Pillow decodes the PNG) -----------------------------------------


def read_png(path: Path) -> Image.Image:
    """The screenshot as RGB pixels."""
    with Image.open(path) as image:
        assert image.format == "PNG", f"{path}: not a PNG"
        return image.convert("RGB")


def _count(image: Image.Image, colour: tuple[int, int, int]) -> int:
    """How many pixels of ``image`` are exactly ``colour``."""
    counts = image.getcolors(image.width * image.height) or []  # never None: room for all
    return next((n for n, c in counts if c == colour), 0)


def band_rows(image: Image.Image, colour: tuple[int, int, int], min_share: float = 0.5) -> int:
    """How many pixel rows are mostly ``colour`` (a full-width band, like the verdict)."""
    rows = (image.crop((0, y, image.width, y + 1)) for y in range(image.height))
    return sum(1 for row in rows if _count(row, colour) >= image.width * min_share)


def has_colour(image: Image.Image, colour: tuple[int, int, int], at_least: int = 200) -> bool:
    return _count(image, colour) >= at_least


def top_quarter(image: Image.Image) -> Image.Image:
    """Where the verdict must be: it comes first on the page."""
    return image.crop((0, 0, image.width, image.height // 4))


# --- the DOM as Chromium parsed it -------------------------------------------------------------


class Dom(HTMLParser):
    """The few things the page must show: verdict, headline, matrix, notes."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.by_id: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        self.matrix_head: list[str] = []
        self.matrix_rows: list[list[tuple[str, str, str]]] = []  # (class, promise, text)
        self._open: dict[str, list[str]] = {}
        self._cell: list[str] | None = None
        self._cell_attrs: dict[str, str] = {}
        self._in_matrix = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.stack.append((tag, attributes))
        if "id" in attributes:
            self._open[attributes["id"]] = []
            self.classes[attributes["id"]] = attributes.get("class", "")
        if tag == "table" and "matrix" in attributes.get("class", "").split():
            self._in_matrix = True
        if self._in_matrix and tag == "tr":
            self.matrix_rows.append([])
        if self._in_matrix and tag in ("td", "th"):
            self._cell, self._cell_attrs = [], attributes

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, attributes = self.stack.pop()
            if "id" in attributes and attributes["id"] in self._open:
                self.by_id[attributes["id"]] = " ".join(
                    "".join(self._open.pop(attributes["id"])).split()
                )
            if open_tag == tag:
                break
        if self._in_matrix and tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            if tag == "th" and len(self.matrix_rows) == 1:
                self.matrix_head.append(text)
            else:
                self.matrix_rows[-1].append(
                    (
                        self._cell_attrs.get("class", ""),
                        self._cell_attrs.get("data-promise", ""),
                        text,
                    )
                )
            self._cell = None
        if tag == "table":
            self._in_matrix = False

    def handle_data(self, data: str) -> None:
        for parts in self._open.values():
            parts.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(dom: str) -> Dom:
    parsed = Dom()
    parsed.feed(dom)
    return parsed


# --- sign-off inputs ---------------------------------------------------------------------------


def _mismatch(source_id: str) -> Finding:
    return mismatch(source_id, explanation="as string: currency: 'EUR' -> 'USD'")


def signoff_input(*, broken: bool) -> SignoffInput:
    properties = (
        outcome(
            1, ORDERS, "properties", "failed", entities_checked=3,
            findings=[_mismatch(f"ord_{n}") for n in range(3)],
        )
        if broken
        else outcome(1, ORDERS, "properties", "passed", entities_checked=3)
    )  # fmt: skip
    return SignoffInput(
        outcomes=[
            outcome(0, CUSTOMERS, "exists", "passed", entities_checked=3),
            outcome(0, CUSTOMERS, "edits", "passed", entities_checked=4),
            outcome(0, CUSTOMERS, "idempotence", "passed", entities_checked=4),
            outcome(1, ORDERS, "exists", "passed", entities_checked=3),
            properties,
            outcome(1, ORDERS, "references", "passed", entities_checked=3),
            outcome(
                1, ORDERS, "edits", "passed", entities_checked=4,
                reason="link survival only: status (unmapped) was edited",
            ),
            outcome(1, ORDERS, "idempotence", "passed", entities_checked=8),
        ],
        sections=[
            SectionInfo(dataflow=DOC, index=0, heading=CUSTOMERS, existence_only=True),
            SectionInfo(dataflow=DOC, index=1, heading=ORDERS),
            SectionInfo(
                dataflow=DOC, index=2, heading=ADDRESS, covered=False,
                reason="no connector for 'Chargebee Address'",
            ),
        ],
        mode="sandbox",
        sut="command: ./my-syncer",
        started=datetime(2026, 11, 26, 1, 0, tzinfo=UTC),
        finished=datetime(2026, 11, 26, 1, 1, tzinfo=UTC),
        revision="abc123",
    )  # fmt: skip


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for label, broken in (("nogo", True), ("go", False)):
        folder = tmp_path_factory.mktemp(f"signoff-{label}")
        verdict = write_signoff(signoff_input(broken=broken), folder)
        assert verdict.html is not None
        out[label] = verdict.html
    return out


PROMISES = ("exists", "properties", "references", "edits", "idempotence")


def test_signoff_dom_shows_the_verdict_first_and_the_matrix(
    chromium: Path, pages: dict[str, Path], tmp_path: Path
) -> None:
    dom = parse(browse(chromium, pages["nogo"].as_uri(), tmp_path, "--dump-dom"))
    assert dom.by_id["verdict"] == "NO-GO" and "nogo" in dom.classes["verdict"].split()
    assert dom.by_id["headline"] == (f"1 promise broken in 1 section: {ORDERS} (properties).")
    # the registry's columns of the promises the page's scenarios tested, in registry order
    assert dom.matrix_head == ["#", "Section", *(promise(p).title for p in PROMISES)]
    rows = [r for r in dom.matrix_rows if r]
    assert [r[1][2] for r in rows] == [CUSTOMERS, ORDERS, ADDRESS]
    assert all(len(r) == 2 + len(PROMISES) for r in rows)
    orders = {promise: (cls, text) for cls, promise, text in rows[1][2:]}
    assert orders["properties"] == ("failed", "failed (3 checked, 3 findings)")
    assert orders["exists"] == ("passed", "passed (3 checked)")
    assert orders["edits"][0] == "passed" and orders["edits"][1].endswith("[2]")
    customers = {promise: cls for cls, promise, _ in rows[0][2:]}
    assert customers["properties"] == customers["references"] == "existence-only"
    address = {cls for cls, _, _ in rows[2][2:]}
    assert address == {"skipped"}
    assert "link survival only" in dom.by_id["note-2"]
    assert "mismatch: Chargebee Order 'ord_0'" in browse(
        chromium, pages["nogo"].as_uri(), tmp_path, "--dump-dom"
    )


def test_signoff_paints_the_verdict_band_and_cell_colours(
    chromium: Path, pages: dict[str, Path], tmp_path: Path
) -> None:
    nogo = read_png(screenshot(chromium, pages["nogo"].as_uri(), tmp_path, "signoff-nogo"))
    go = read_png(screenshot(chromium, pages["go"].as_uri(), tmp_path, "signoff-go"))
    assert nogo.size == (1280, 1400)
    assert band_rows(top_quarter(nogo), NOGO_BAND) >= 30, "no red NO-GO band at the top"
    assert band_rows(top_quarter(nogo), GO_BAND) == 0
    assert has_colour(nogo, GO_BAND)  # passed cells are green
    assert band_rows(top_quarter(go), GO_BAND) >= 30, "no green GO band at the top"
    assert band_rows(go, NOGO_BAND) == 0 and not has_colour(go, NOGO_BAND)


# --- the Allure 3 report -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def allure_report() -> Path:
    # .ci/browser passes a path relative to the project; file:// needs it absolute
    report = Path(os.environ.get("TALKQA_ALLURE_REPORT", REPO / "reports" / "allure-report"))
    report = report.resolve()
    if not (report / "index.html").is_file():
        pytest.skip(
            f"no Allure report at {report}: build one with `make signoff report` "
            "(needs Node.js) to look at it in the browser"
        )
    return report


@pytest.fixture(scope="module")
def allure_tests(allure_report: Path) -> dict[str, dict[str, Any]]:
    """The report's test results by id (Allure writes this index next to index.html)."""
    index = json.loads((allure_report / "test-results.json").read_text(encoding="utf-8"))
    by_id: dict[str, dict[str, Any]] = index["byId"]
    assert by_id, "the Allure report holds no test results"
    return by_id


class Visible(HTMLParser):
    """The text a reader sees: no script or style bodies, whitespace collapsed."""

    def __init__(self) -> None:
        super().__init__()
        self._hidden = 0
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._parts.append(data)

    @classmethod
    def text(cls, dom: str) -> str:
        parser = cls()
        parser.feed(dom)
        return " ".join(" ".join(parser._parts).split())


ALLURE_BUDGET = "--virtual-time-budget=15000"  # the report is a script: let it draw


def test_allure_report_is_one_file_that_renders_from_disk(
    chromium: Path, allure_report: Path, tmp_path: Path
) -> None:
    index = allure_report / "index.html"
    page = index.read_text(encoding="utf-8")
    assert not (allure_report / "data").exists(), "not a single-file report"
    assert "googletagmanager" not in page, "the report would phone home"
    external = [src for src in page.split('src="')[1:] if not src.startswith("data:")]
    assert external == [], f"the page loads {external[0][:60]}"
    text = Visible.text(browse(chromium, index.as_uri(), tmp_path, ALLURE_BUDGET, "--dump-dom"))
    assert "Results" in text and "Total" in text, "the Allure report did not render"
    for name in ("mode", "system.under.test", "talkqa.version", "git.revision"):
        assert name in text, f"environment row {name} not shown"
    assert "Dataflow" in text or "Chargebee" in text  # the checklists name the report
    shot = screenshot(chromium, index.as_uri(), tmp_path, "allure", ALLURE_BUDGET)
    image = read_png(shot)
    grid = ((x, y) for y in range(0, image.height, 40) for x in range(0, image.width, 40))
    colours = {image.getpixel(xy) for xy in grid}
    assert len(colours) > 5, "the Allure report painted a blank page"


def test_allure_report_shows_its_scenarios_from_disk(
    chromium: Path, allure_report: Path, allure_tests: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    index = allure_report / "index.html"
    picked = sorted(allure_tests.values(), key=lambda t: str(t["name"]))[:3]
    for test in picked:
        dom = browse(chromium, f"{index.as_uri()}#{test['id']}", tmp_path, ALLURE_BUDGET,
                     "--dump-dom")  # fmt: skip
        text = Visible.text(dom)
        assert test["name"] in text, f"scenario {test['name']!r} not shown"
        for label in ("epic", "feature", "story"):
            assert label in text, f"{label} not shown for {test['name']!r}"


def test_allure_failed_scenario_shows_its_findings_table(
    chromium: Path, allure_report: Path, allure_tests: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    failed = [t for t in allure_tests.values() if t.get("status") == "failed"]
    if not failed:
        pytest.skip("every scenario of this Allure report passed: no findings to show")
    index = allure_report / "index.html"
    dom = browse(chromium, f"{index.as_uri()}#{failed[0]['id']}", tmp_path, ALLURE_BUDGET,
                 "--dump-dom")  # fmt: skip
    assert "findings: " in dom and "(table)" in dom and "(json)" in dom, "no findings attachments"
    ours = [c["name"] for c in categories()]
    assert any(f"Category: {name}" in dom for name in ours), "not sorted into a talk-qa category"
    for label in ("epic", "feature", "story", "system under test"):
        assert label in dom, f"{label} not shown"
