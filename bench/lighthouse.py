"""Lighthouse scores of the public pages, on a phone and on a desktop.

Builds a scratch SQLite database with the demo data (`flask db upgrade`, `flask demo seed`, as
`./run` does), serves it as deployed (`gunicorn -c deploy/gunicorn.conf.py`, no proxy in front)
and runs Lighthouse (the pinned npm devDependency, node_modules/.bin/lighthouse) with Debian's
Chromium, headless, against the home page, a search, a listing with photos and the log-in page:
once with Lighthouse's mobile defaults (a Moto G Power, simulated slow 4G and a 4x slower CPU),
once with its desktop preset. Prints a table of the four category scores per page and form factor
(the median run by performance when --runs > 1) and every scored audit below 1, and exits 1 when
a page misses the targets: SEO 100, performance, accessibility and best practices at least 95.

    .venv/bin/python bench/lighthouse.py                    # 8 runs, about two minutes
    .venv/bin/python bench/lighthouse.py --runs 3 --json results.json
    .venv/bin/python bench/lighthouse.py --base http://127.0.0.1:5000   # a server already running

Needs `npm ci` (bin/services runs it) and Chromium (CHROME_PATH, default /usr/bin/chromium).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import ROOT, AppServer, flask  # noqa: E402

LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
TARGETS = {"performance": 95, "accessibility": 95, "best-practices": 95, "seo": 100}
FORM_FACTORS = ("mobile", "desktop")
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu --no-first-run --disable-background-networking"


def pages(base):
    """(name, path) of the audited pages; the listing is the first the sitemap names."""
    with urllib.request.urlopen(base + "/sitemaps/listings-1.xml", timeout=10) as response:
        first = re.search(r"<loc>([^<]+)</loc>", response.read().decode()).group(1)
    listing = "/" + first.split("/", 3)[3]
    return [("home", "/"), ("search", "/search?category=venues"), ("listing", listing), ("log-in", "/login")]


def run_lighthouse(url, form_factor, out_path, categories=CATEGORIES, chrome_path=None):
    """One Lighthouse run: the parsed JSON report (raises if Lighthouse fails)."""
    command = [str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={out_path}",
               f"--chrome-flags={CHROME_FLAGS}", f"--only-categories={','.join(categories)}"]
    if form_factor == "desktop":
        command.append("--preset=desktop")
    env = {**os.environ, "CHROME_PATH": chrome_path or os.environ.get("CHROME_PATH", "/usr/bin/chromium")}
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    if out.returncode != 0:
        raise RuntimeError(f"lighthouse failed on {url} ({form_factor}): {out.stderr[-2000:]}")
    return json.loads(Path(out_path).read_text())


def scores(report):
    return {name: round(category["score"] * 100) for name, category in report["categories"].items()}


def shortfalls(report):
    """Scored audits below 1: (category, audit id, score, what it shows)."""
    found = []
    for name, category in report["categories"].items():
        for ref in category["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if ref.get("weight", 0) > 0 and audit.get("score") is not None and audit["score"] < 1:
                found.append((name, ref["id"], audit["score"], audit.get("displayValue", "")))
    return found


def misses(result):
    return [name for name, target in TARGETS.items() if result[name] < target]


def serve_demo(workdir):
    env = {"DATABASE_URL": f"sqlite:///{workdir / 'rentpe.db'}", "UPLOAD_FOLDER": str(workdir / "uploads"),
           "SECRET_KEY": "bench-secret"}
    flask(env, "db", "upgrade")
    flask(env, "demo", "seed")
    return AppServer(env, kind="gunicorn", log_path=workdir / "server.log").start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="audit a server already running here instead of a scratch one")
    parser.add_argument("--runs", type=int, default=1, help="runs per page and form factor (the median is kept)")
    parser.add_argument("--json", help="also write every kept score and shortfall to this file")
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        sys.exit("Lighthouse is not installed: run `npm ci` (bin/services does)")

    with tempfile.TemporaryDirectory(prefix="rentpe-lighthouse-") as tmp:
        tmp = Path(tmp)
        server = None if args.base else serve_demo(tmp)
        base = args.base or server.base
        try:
            results = []
            for name, path in pages(base):
                for form_factor in FORM_FACTORS:
                    runs = []
                    for n in range(args.runs):
                        report = run_lighthouse(base + path, form_factor, tmp / f"{name}-{form_factor}-{n}.json")
                        runs.append((scores(report), shortfalls(report)))
                    runs.sort(key=lambda run: run[0]["performance"])
                    kept, below = runs[len(runs) // 2]
                    perf = [run[0]["performance"] for run in runs]
                    results.append({"page": name, "path": path, "form_factor": form_factor, **kept,
                                    "performance_runs": perf, "shortfalls": below})
                    print(f"{name:8} {form_factor:8} " + " ".join(f"{c} {kept[c]:3}" for c in CATEGORIES)
                          + (f"  (performance {min(perf)}–{max(perf)})" if len(perf) > 1 else ""), flush=True)
        finally:
            if server is not None:
                server.stop()

    print("\n| page | form factor | performance | accessibility | best practices | SEO |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['page']} (`{r['path']}`) | {r['form_factor']} | "
              + " | ".join(str(r[c]) for c in CATEGORIES) + " |")
    failed = False
    for r in results:
        for category, audit, score, shown in r["shortfalls"]:
            print(f"  {r['page']} {r['form_factor']}: {category} {audit} {score} {shown}")
        if misses(r):
            failed = True
            print(f"MISSED: {r['page']} {r['form_factor']}: {', '.join(misses(r))}")
    print(f"median of {args.runs} run(s) per line; targets: SEO 100, the others at least 95")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
