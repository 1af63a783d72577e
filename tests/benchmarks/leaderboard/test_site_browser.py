"""The leaderboard site in a real browser (headless Chromium through chromedriver, pages loaded
from disk): the numbers are the store's, sorting orders rows, every link resolves, nothing is
requested from the network, nothing is logged as an error, and hostile names stay text.

Needs Debian's ``chromium`` and ``chromium-driver`` (tools/setup_env.sh installs them) and
selenium (requirements.txt). Where CI runs (``CI=true``) a missing browser fails the test; elsewhere
it is skipped with the reason. Screenshots of each page kind are saved under the test's temporary
folder (``.../screenshots``) and, when ``FLSL_SCREENSHOTS`` names a folder, copied there.
"""
import json
import os
import re
import shutil
import statistics
from collections import defaultdict
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from benchmarks.leaderboard import site as site_mod
from core.results import Store
from synthetic.results import generate_store

HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_CONFIG = '"><script>window.__pwned=1</script>'


def _browser_or_reason():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [n for n, p in (("chromium", chromium), ("chromedriver (Debian: chromium-driver)", driver)) if not p]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (requirements.txt)")
    return (chromium, driver), missing


@pytest.fixture(scope="module")
def browser():
    (chromium, driver_path), missing = _browser_or_reason()
    if missing:
        why = f"no real browser to test the site in: missing {', '.join(missing)} (tools/setup_env.sh installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    opts.binary_location = chromium
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A store with paginated benchmarks, a hostile checkpoint name and hostile provenance
    strings, and the site built from it."""
    root = tmp_path_factory.mktemp("leaderboard")
    store = generate_store(root / "results.db", 96, n_checkpoints=8, hostile_name=HOSTILE)
    with Store(store) as st:
        st.add(dict(kind="dense", benchmark="coco", dataset="data/coco", checkpoint=HOSTILE_CONFIG,
                    protocol=HOSTILE_CONFIG, protocol_default=False, protocol_note=HOSTILE,
                    config_path=HOSTILE_CONFIG, command=f"tools/test.py '{HOSTILE}'", family=HOSTILE,
                    extra={HOSTILE: HOSTILE_CONFIG}), {"bbox_AP": {0: 12.5, 1: 13.5}})
        # a re-run of seed 0 of the first checkpoint's COCO row: it replaces that seed's value
        first = st.runs(benchmark="coco")[0]
        st.add({k: first[k] for k in ("kind", "benchmark", "dataset", "protocol", "protocol_default", "checkpoint",
                                      "checkpoint_digest", "family", "architecture")},
               {"bbox_AP": {0: 99.0}})
        runs = st.runs()
    old = site_mod.ROWS_PER_PAGE, site_mod.CHECKPOINTS_PER_PAGE
    # several pages per benchmark, and checkpoint lists of their own, with this small store
    site_mod.ROWS_PER_PAGE, site_mod.CHECKPOINTS_PER_PAGE = 3, 4
    try:
        with Store(store) as st:
            site_mod.build_site(st, root / "site")
    finally:
        site_mod.ROWS_PER_PAGE, site_mod.CHECKPOINTS_PER_PAGE = old
    return root / "site", runs


def _expected(runs):
    """``{(benchmark, dataset): {row key: {metric: (mean, sd, n)}}}`` computed here from the
    stored runs: newest value per seed (by run id), then mean and sample standard deviation."""
    cells = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    for r in sorted(runs, key=lambda r: r["id"]):
        key = f"{r['checkpoint_digest'] or 'name:' + r['checkpoint']}|{r['protocol']}"
        for m, per in r["metrics"].items():
            cells[(r["benchmark"], r["dataset"])][key][m].update(per)
    out = {}
    for board, rows in cells.items():
        out[board] = {k: {m: (statistics.fmean(v.values()), statistics.stdev(v.values()) if len(v) > 1 else None,
                              len(v)) for m, v in ms.items()} for k, ms in rows.items()}
    return out


ROWS_JS = """
const t = document.querySelector('table.sortable');
return {benchmark: t.dataset.benchmark, dataset: t.dataset.dataset,
        heads: Array.from(t.tHead.rows[0].cells).map(c => c.innerText.replace(/[\\u25B2\\u25BC]/g, '').trim()),
        rows: Array.from(t.tBodies[0].rows).map(tr => ({key: tr.dataset.row,
              cells: Array.from(tr.cells).map(td => [td.dataset.v, td.innerText])}))};
"""


METRIC_HEADS = {m for metrics in __import__("synthetic.results").results.BENCHMARKS.values() for m in metrics[2]}


def _file(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def _drain(drv):
    drv.get_log("browser")
    drv.get_log("performance")


def _check_clean(drv, page):
    """No console error and no request that is not a file of the site."""
    errors = [m for m in drv.get_log("browser") if m["level"] in ("SEVERE", "ERROR")]
    assert errors == [], f"{page}: console errors {errors}"
    urls = []
    for m in drv.get_log("performance"):
        msg = json.loads(m["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert urls, f"{page}: no request seen at all (is the performance log on?)"
    foreign = [u for u in urls if not u.startswith("file://")]
    assert foreign == [], f"{page}: requests outside the site {foreign}"


def test_every_table_number_is_the_stores(browser, built):
    site, runs = built
    expected = _expected(runs)
    pages = sorted((site / "b").glob("*.html"))
    seen = defaultdict(set)
    for page in pages:
        _drain(browser)
        browser.get(page.as_uri())
        got = browser.execute_script(ROWS_JS)
        board = (got["benchmark"], got["dataset"])
        heads = got["heads"]
        for row in got["rows"]:
            seen[board].add(row["key"])
            want = expected[board][row["key"]]
            for col, (value, text) in enumerate(row["cells"]):
                metric = heads[col]
                if metric not in want:
                    continue
                mean, sd, n = want[metric]
                assert float(value) == pytest.approx(mean, rel=1e-12, abs=1e-12), (page, row["key"], metric)
                assert text.startswith(f"{mean:.2f}") and f"n={n}" in text
                if sd is not None:
                    assert f"± {sd:.2f}" in text
            for col, m in enumerate(heads):
                if m in METRIC_HEADS and m not in want:
                    assert row["cells"][col][0] == "", (page, m)     # no number where none is stored
        _check_clean(browser, page)
    assert {b: set(rows) for b, rows in expected.items()} == dict(seen)   # every row on some page
    # the re-run of one seed replaced its value: a cell of 99.0 mixed with the older other seeds
    assert any(m.get("bbox_AP", (0,))[0] > 45 for rows in expected.values() for m in rows.values())


def test_paper_numbers_beside_ours_and_non_default_marker(browser, built):
    site, _ = built
    from benchmarks.reproduce.references import load_references
    table = load_references()[0]["coco"]
    pretraining = {"flsl-export": "FLSL", "dino": "DINO", "ibot": "iBOT"}
    backbone = {"vit_small_patch16_224": "ViT-S/16", "vit_small_patch8_224": "ViT-S/8"}
    paper = {(pretraining[f], backbone[a]): None for f in pretraining for a in backbone}
    for r in table.rows:
        paper[(r.pretraining, r.backbone)] = r.reference["bbox_AP"].value
    matched = 0
    for page in sorted((site / "b").glob("coco-*.html")):
        browser.get(page.as_uri())
        got = browser.execute_script(ROWS_JS)
        col = got["heads"].index("bbox_AP (paper)")
        fam, arch = got["heads"].index("family"), got["heads"].index("architecture")
        for row in got["rows"]:
            cell = row["cells"][col]
            want = paper.get((pretraining.get(row["cells"][fam][1]), backbone.get(row["cells"][arch][1])))
            if want is not None:
                assert float(cell[0]) == want and cell[1] == f"{want:.1f}"
                matched += 1
            else:
                assert cell[0] == ""
    assert matched >= 2

    # the marker sits exactly on the rows whose runs used a non-default protocol
    site_runs = built[1]
    want = {f"{r['checkpoint_digest'] or 'name:' + r['checkpoint']}|{r['protocol']}" for r in site_runs
            if not r["protocol_default"]}
    flagged = set()
    for page in sorted((site / "b").glob("*.html")):
        browser.get(page.as_uri())
        flagged |= set(browser.execute_script("return Array.from(document.querySelectorAll('tbody tr'))"
                                              ".filter(tr => tr.querySelector('.flag')).map(tr => tr.dataset.row)"))
    assert want and flagged == want


def _column(drv, col):
    return drv.execute_script("return Array.from(document.querySelector('table.sortable').tBodies[0].rows)"
                              f".map(tr => tr.cells[{col}].dataset.v)")


def test_sorting_by_mouse_and_keyboard(browser, built):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    site, _ = built
    page = sorted((site / "b").glob("davis-*.html"))[0]
    browser.get(page.as_uri())
    heads = browser.execute_script(ROWS_JS)["heads"]
    buttons = browser.find_elements(By.CSS_SELECTOR, "table.sortable thead th button")
    col = heads.index("J_mean")
    buttons[col].click()
    vals = [float(v) for v in _column(browser, col) if v != ""]
    assert len(vals) >= 2 and vals == sorted(vals, reverse=True)
    assert buttons[col].find_element(By.XPATH, "..").get_attribute("aria-sort") == "descending"
    buttons[col].click()
    vals = [float(v) for v in _column(browser, col) if v != ""]
    assert vals == sorted(vals)
    # keyboard: the header is a button; Enter on it sorts, and the focus is visible
    name_col = heads.index("checkpoint")
    buttons[name_col].send_keys(Keys.ENTER)
    names = _column(browser, name_col)
    assert names == sorted(names, key=str.lower, reverse=True)
    style = browser.execute_script("const s = getComputedStyle(document.activeElement); "
                                   "return [document.activeElement.tagName, s.outlineStyle, s.outlineWidth];")
    assert style[0] == "BUTTON" and style[1] != "none" and style[2] != "0px"


def _targets_of(page: Path, hrefs):
    for href in hrefs:
        assert href.startswith("file://"), (page, href)
        target = _file(href)
        assert target.is_file(), (page, href)
        frag = urlparse(href).fragment
        if frag:
            assert f'id="{frag}"' in target.read_text(), (page, href)


def test_every_link_resolves_and_provenance_is_reached(browser, built):
    from selenium.webdriver.common.by import By
    site, runs = built
    pages = sorted(site.rglob("*.html"))
    for page in pages:     # every link of every page (hrefs resolved by the browser)
        browser.get(page.as_uri())
        hrefs = browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        _targets_of(page, hrefs)
    # a metric cell leads to its run's provenance, which names the run's command and config digest
    browser.get(sorted((site / "b").glob("coco-*.html"))[0].as_uri())
    link = browser.find_element(By.CSS_SELECTOR, "tbody td.num a")
    run_id = int(link.get_attribute("href").rsplit("#run-", 1)[1])
    link.click()
    target = browser.execute_script("return document.querySelector(':target').id")
    assert target == f"run-{run_id}"
    run = next(r for r in runs if r["id"] == run_id)
    text = browser.find_element(By.ID, target).text
    assert run["command"] in text and run["config_digest"] in text and run["checkpoint_digest"] in text


def test_hostile_strings_render_as_text_and_run_nothing(browser, built):
    from selenium.common.exceptions import NoAlertPresentException
    site, runs = built
    ck = next(p for p in (site / "c").glob("*.html") if "img" in p.name)
    pages = [ck, *sorted((site / "b").glob("coco-*.html")), *sorted((site / "runs").glob("*.html")),
             *sorted(site.glob("checkpoints-*.html")), site / "index.html"]
    shown = False
    for page in pages:
        _drain(browser)
        browser.get(page.as_uri())
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text
        assert browser.execute_script("return document.querySelectorAll('img, script:not([src])').length") == 0
        assert browser.execute_script("return window.__pwned === undefined")
        body = browser.execute_script("return document.body.innerText")
        shown |= HOSTILE in body
        _check_clean(browser, page)
    assert shown
    browser.get(ck.as_uri())
    assert HOSTILE in browser.execute_script("return document.querySelector('h1').innerText")


def test_pages_on_a_phone_and_screenshots(browser, built, tmp_path):
    site, _ = built
    shots = tmp_path / "screenshots"
    shots.mkdir()
    assert len(list(site.glob("checkpoints-*.html"))) == 3      # 9 checkpoints, 4 per list
    kinds = {"index": site / "index.html", "checkpoints": site / "checkpoints-1.html", "benchmark": sorted((site / "b").glob("coco-*.html"))[0],
             "checkpoint": sorted((site / "c").glob("*.html"))[0], "provenance": sorted((site / "runs").glob("*.html"))[0]}
    for width, tag in ((1280, "desktop"), (390, "phone")):
        browser.set_window_size(width, 900)
        for kind, page in kinds.items():
            browser.get(page.as_uri())
            # no sideways scrolling of the page itself: wide tables scroll inside their own box
            over = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert over <= 1, (tag, kind, over)
            out = shots / f"{kind}-{tag}.png"
            assert browser.save_screenshot(str(out)) and out.stat().st_size > 1000
    browser.set_window_size(1280, 1000)
    copy_to = os.environ.get("FLSL_SCREENSHOTS")
    if copy_to:
        Path(copy_to).mkdir(parents=True, exist_ok=True)
        for f in shots.iterdir():
            shutil.copyfile(f, Path(copy_to) / f.name)
    assert sorted(f.name for f in shots.iterdir()) == sorted(f"{k}-{t}.png" for k in kinds for t in ("desktop", "phone"))


def test_escaping_in_source(built):
    """Independent of the browser: the hostile name never appears unescaped in any page."""
    site, _ = built
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert HOSTILE not in text and "<script>window.__pwned" not in text, page
        assert re.findall(r"<script[^>]*>", text) in ([], ['<script src="../assets/sort.js" defer>'],
                                                       ['<script src="assets/sort.js" defer>'])
