"""How fast the simulator's list pages through a large Space, beside a list without its index.

One run, one simulator on loopback, no faults, no latency:

(a) adding N numbers "bought in the dashboard" through ``POST /__sim__/projects/{id}/numbers``
    (``count`` + ``start``);
(b) paging through all N over HTTP at PageSize 1000, following ``next_page_uri`` as a sync
    does, with `requests` (the time includes JSON on both sides and the client's decoding);
(c) the simulator's own work for one page in the middle of the Space (Page N/2000), in process,
    over the same records: the per-project index (`spaces.list_page`, what the simulator
    serves) beside the alternative it replaced, a scan of every number of the project per page
    (the list built whole, then sliced: `scan_all_page` below). The median of R repeats.

    .venv/bin/python bench/simulator_list.py [--numbers 100000] [--repeats 20]
"""

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

from signalwire_simulator import SimProject, Simulator  # noqa: E402
from signalwire_simulator.spaces import ProjectNumbers, list_page  # noqa: E402

PAGE_SIZE = 1000


def scan_all_page(numbers: ProjectNumbers, page: int, page_size: int) -> list[dict[str, Any]]:
    """The alternative: every record of the project read and filtered for each page, as the
    one-module simulator did before issue 17 (less its copy of each record)."""
    matching = [record for record in numbers.records() if "+" in record["phone_number"]]
    return matching[page * page_size : (page + 1) * page_size]


def median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    project = SimProject(str(uuid.uuid4()), "PT" + uuid.uuid4().hex, "bench.signalwire.com")
    auth = (project.project_id, project.token)
    with Simulator([project]).start() as simulator:
        started = time.perf_counter()
        added = requests.post(
            f"{simulator.url}/__sim__/projects/{project.project_id}/numbers",
            json={"count": args.numbers, "start": "+14150000000"},
            timeout=600,
        )
        added.raise_for_status()
        add_seconds = time.perf_counter() - started

        session = requests.Session()
        url = (
            f"{simulator.api_base_url}/Accounts/{project.project_id}/IncomingPhoneNumbers"
            f"?PageSize={PAGE_SIZE}"
        )
        seen = pages = 0
        started = time.perf_counter()
        while url:
            body = session.get(url, auth=auth, timeout=60).json()
            seen += len(body["incoming_phone_numbers"])
            pages += 1
            url = simulator.url + body["next_page_uri"] if body["next_page_uri"] else None
        page_seconds = time.perf_counter() - started
        assert seen == args.numbers, f"listed {seen} of {args.numbers}"

        numbers = simulator._numbers[project.project_id]  # the same records, in process
        middle = len(numbers) // PAGE_SIZE // 2
        after = numbers.sid_at(middle * PAGE_SIZE - 1)
        query = f"Page={middle}&PageSize={PAGE_SIZE}&PageToken=PA{after.replace('-', '')}"
        indexed = list_page(numbers, project.project_id, query).body["incoming_phone_numbers"]
        assert indexed == scan_all_page(numbers, middle, PAGE_SIZE)
        index_ms = median_ms(lambda: list_page(numbers, project.project_id, query), args.repeats)
        scan_ms = median_ms(lambda: scan_all_page(numbers, middle, PAGE_SIZE), args.repeats)

    print(f"Simulator list, {args.numbers:,} numbers, PageSize {PAGE_SIZE}")
    print(f"  (a) add {args.numbers:,} through the control endpoint   {add_seconds:8.2f} s")
    print(
        f"  (b) page through them over HTTP ({pages} pages)        {page_seconds:8.2f} s"
        f"   ({page_seconds / pages * 1000:.1f} ms a page)"
    )
    print(f"  (c) one page's work in the simulator, page {middle} (median of {args.repeats}):")
    print(f"        per-project index (served)              {index_ms:8.2f} ms")
    print(f"        scan of every number (the alternative)  {scan_ms:8.2f} ms")
    print(f"        index / scan                            {index_ms / scan_ms:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
