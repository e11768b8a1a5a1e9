"""Print what `mutmut run` found, per module, and every survivor README does not explain.

Reads mutmut's results in mutants/ (after `mutmut run`, which `make mutants` does). A
mutant counts as killed when a test failed or ran out of time on it. README's section
"Mutation testing" lists the surviving mutants that are equivalent (no test could tell them
from the real code), each with its reason; any other survivor fails this script: kill it with
a test, or add it there with the reason.

Usage: python scripts/mutant_scores.py
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

REPO_DIR = Path(__file__).resolve().parent.parent
KILLED = {"killed", "timeout"}


def explained_in_readme() -> set[str]:
    section = (REPO_DIR / "README.md").read_text().split("## Mutation testing", 1)[-1]
    section = section.split("\n## ", 1)[0]
    # Named without the package: `importing.x__send__mutmut_3`.
    return set(re.findall(r"`(\w+\.x[^`\s]*__mutmut_\d+)`", section))


def main() -> int:
    metas = sorted((REPO_DIR / "mutants").glob("**/*.py.meta"))
    if not metas:
        sys.exit("No mutmut results in mutants/: run `make mutants` first.")
    explained = explained_in_readme()
    unexplained = []
    print(f"{'module':32} {'mutants':>8} {'killed':>7} {'survived':>9} {'score':>7}")
    totals: Counter = Counter()
    for meta in metas:
        module = str(meta.relative_to(REPO_DIR / "mutants")).removesuffix(".meta")
        statuses = {
            name: status_by_exit_code[code]
            for name, code in json.loads(meta.read_text())["exit_code_by_key"].items()
        }
        counts = Counter("killed" if s in KILLED else s for s in statuses.values())
        totals.update(counts)
        total = sum(counts.values())
        score = counts["killed"] / total if total else 1.0
        print(f"{module:32} {total:8} {counts['killed']:7} {counts['survived']:9} {score:7.1%}")
        unexplained += [
            (name, status)
            for name, status in sorted(statuses.items())
            if status not in KILLED and name.split(".", 1)[1] not in explained
        ]
        if set(counts) - {"killed", "survived"}:
            others = {s: n for s, n in counts.items() if s not in ("killed", "survived")}
            print(f"{'':32} also: {others}")
    total = sum(totals.values())
    print(
        f"{'all':32} {total:8} {totals['killed']:7} {totals['survived']:9} "
        f"{totals['killed'] / total:7.1%}"
    )
    if unexplained:
        print(f"\n{len(unexplained)} mutants not killed and not explained in README:")
        for name, status in unexplained:
            print(f"  {status:10} {name}   (mutmut show {name})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
