#!/usr/bin/env python
"""The leaderboard site, built from the results store.

    python tools/leaderboard.py build --out SITE [--store PATH]
    python tools/leaderboard.py serve --out SITE [--port 8000]      (a local look: 127.0.0.1 only)

``build`` writes SITE/index.html (the entry), one page per benchmark and data set (a sortable
table: rows checkpoints, columns metrics as mean ± spread over seeds, the paper's number beside
ours), one page per checkpoint and the provenance of every run; the site works from the folder
(file://), with no network request. ``serve`` shows a built site at http://127.0.0.1:PORT/.
docs/leaderboard.md says what is on each page.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.cli import ToolParser, flags
from core.errors import FLSLError, cli_main


def parse_args(argv=None):
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="write the site from the store",
                   parents=[flags("store", "out", required=("out",))])
    serve = sub.add_parser("serve", help="serve a built site on 127.0.0.1", parents=[flags("out", required=("out",))])
    serve.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0: any free one)")
    return p.parse_args(argv)


def build(store_option, out) -> dict:
    from benchmarks.leaderboard.site import build_site
    from core.results import Store
    t0 = time.perf_counter()
    with Store(store_option, create=False) as store:
        counts = build_site(store, out)
    print(f"wrote {Path(out) / 'index.html'}: {counts['runs']} runs, {counts['benchmarks']} benchmark pages, "
          f"{counts['checkpoints']} checkpoints, {counts['pages']} pages ({time.perf_counter() - t0:.2f} s) "
          f"from {store.path}")
    return counts


def serve(out, port: int) -> None:
    import functools
    import http.server
    site = Path(out)
    if not (site / "index.html").is_file():
        raise FLSLError(f"{site} (--out): no built site here (run: tools/leaderboard.py build --out {site})")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        print(f"serving {site} at http://127.0.0.1:{httpd.server_address[1]}/ (Ctrl-C stops)", flush=True)
        httpd.serve_forever()


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command == "build":
        build(args.store, args.out)
    else:
        serve(args.out, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
