"""tools/leaderboard.py: build writes a whole site (again over an earlier one), refuses a folder it
did not make and a store that is not there; serve answers on 127.0.0.1 only."""
import subprocess
import sys
import time
import urllib.request

from core.errors import cli_main
from synthetic.results import generate_store
from tests.benchmarks.leaderboard.tool import REPO, load_tool


def test_build_rebuild_and_refusals(tmp_path, capsys):
    main = load_tool("leaderboard.py").main
    store = generate_store(tmp_path / "r.db", 30, n_checkpoints=3)
    site = tmp_path / "site"
    assert cli_main(main, ["build", "--store", str(store), "--out", str(site)]) == 0
    pages = sorted(p.relative_to(site) for p in site.rglob("*.html"))
    assert (site / "index.html").is_file() and len(pages) > 5
    assert cli_main(main, ["build", "--store", str(store), "--out", str(site)]) == 0     # over its own site
    assert sorted(p.relative_to(site) for p in site.rglob("*.html")) == pages
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")]          # no leftovers
    capsys.readouterr()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert cli_main(main, ["build", "--store", str(store), "--out", str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {mine} (--out): ") and (mine / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    missing = tmp_path / "none.db"
    assert cli_main(main, ["build", "--store", str(missing), "--out", str(tmp_path / "s2")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {missing}: no results store") and not missing.exists()


def test_serve_answers_on_localhost(tmp_path):
    store = generate_store(tmp_path / "r.db", 12, n_checkpoints=2)
    site = tmp_path / "site"
    assert cli_main(load_tool("leaderboard.py").main, ["build", "--store", str(store), "--out", str(site)]) == 0
    proc = subprocess.Popen([sys.executable, str(REPO / "tools" / "leaderboard.py"), "serve", "--out", str(site),
                             "--port", "0"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line
        url = line.split("at ", 1)[1].split()[0]
        for _ in range(50):
            try:
                body = urllib.request.urlopen(url + "index.html", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "FLSL-bench leaderboard" in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)
