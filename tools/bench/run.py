"""`make bench`: run every benchmark, write JSON and a readable table.

A benchmark is a module ``tools/bench/bench_<name>.py`` with a function
``run(results_dir) -> Report``.  Each measures against a baseline taken in
the same run (never a number remembered from another machine or day), and
states its targets; the run fails when a target is missed.

Usage: python tools/bench/run.py [NAME ...]   (default: all)
"""

import importlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "bench" / "results"


class Report:
    """What one benchmark measured: machine-readable data, a table for people,
    and targets as (description, met) pairs."""

    def __init__(self, name, data, headers, rows, targets=()):
        self.name = name
        self.data = data
        self.headers = headers
        self.rows = rows
        self.targets = list(targets)

    def table(self):
        cells = [list(map(str, self.headers))] + [[str(c) for c in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.headers))]
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for text, met in self.targets:
            lines.append("- target %s: %s" % ("MET" if met else "MISSED", text))
        return "\n".join(lines)


def available():
    return sorted(p.stem[len("bench_") :] for p in HERE.glob("bench_*.py"))


def main(argv=None):
    names = (argv if argv is not None else sys.argv[1:]) or available()
    unknown = set(names) - set(available())
    if unknown:
        sys.exit("unknown benchmark(s): %s (have: %s)" % (", ".join(sorted(unknown)), ", ".join(available())))
    RESULTS.mkdir(parents=True, exist_ok=True)
    sys.path[:0] = [str(HERE), str(REPO / "shared"), str(REPO / "tools"), str(REPO / "tests" / "support")]
    missed = []
    summary = ["# Benchmarks (%s)" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())]
    for name in names:
        print("bench: %s ..." % name, flush=True)
        report = importlib.import_module("bench_" + name).run(RESULTS)
        (RESULTS / (report.name + ".json")).write_text(json.dumps(report.data, indent=2, sort_keys=True) + "\n")
        table = report.table()
        print(table + "\n")
        summary += ["", "## " + report.name, "", table]
        missed += [text for text, met in report.targets if not met]
    (RESULTS / "summary.md").write_text("\n".join(summary) + "\n")
    print("bench: results in %s" % RESULTS.relative_to(REPO))
    if missed:
        print("bench: %d target(s) missed:\n  %s" % (len(missed), "\n  ".join(missed)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
