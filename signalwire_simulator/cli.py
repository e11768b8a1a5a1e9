"""The command line: ``python -m signalwire_simulator --port 8765 --demo`` (see ``--help``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import time

from signalwire_simulator.faults import SimConfig
from signalwire_simulator.simulator import Simulator
from signalwire_simulator.spaces import (
    DEMO_PROJECT_ID,
    DEMO_SPACE_HOST,
    DEMO_TOKEN,
    SECOND_DEMO_PROJECT_ID,
    SECOND_DEMO_SPACE_HOST,
    SECOND_DEMO_TOKEN,
    SimProject,
)

logger = logging.getLogger("signalwire_simulator")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("a fraction is a number from 0 to 1")
    return value


def _optional_seconds(text: str) -> float | None:
    return None if text.lower() in ("none", "off", "") else float(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m signalwire_simulator",
        description="A local simulator of SignalWire's Compatibility API import endpoints.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind (8765; 0 = any)")
    parser.add_argument(
        "--project",
        action="append",
        default=[],
        metavar="ID:TOKEN[:SPACE_HOST[:FLAGS]]",
        help="a project; FLAGS is a comma list of no-partner-api, no-numbers-scope, "
        "management-scope. Repeatable.",
    )
    parser.add_argument(
        "--projects-file",
        help="JSON list of projects: {project_id, token, space_host, partner_api, "
        "numbers_scope, management_scope, overrides: {config field: value}}",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help=f"add the demo project {DEMO_PROJECT_ID} (token {DEMO_TOKEN}, {DEMO_SPACE_HOST}) "
        f"and a second one, {SECOND_DEMO_PROJECT_ID} (token {SECOND_DEMO_TOKEN}, "
        f"{SECOND_DEMO_SPACE_HOST})",
    )
    parser.add_argument("--seed", type=int, help="seed for every random choice")
    parser.add_argument("--latency-ms", type=float, help="fixed latency on every API request")
    parser.add_argument("--latency-min-ms", type=float, default=0.0)
    parser.add_argument("--latency-max-ms", type=float, default=0.0)
    parser.add_argument("--error-429-fraction", type=_fraction, default=0.0)
    parser.add_argument(
        "--retry-after",
        type=_optional_seconds,
        default=1,
        help="Retry-After seconds on 429 answers; 'none' omits the header (1)",
    )
    parser.add_argument("--error-500-fraction", type=_fraction, default=0.0)
    parser.add_argument("--error-503-fraction", type=_fraction, default=0.0)
    parser.add_argument("--timeout-fraction", type=_fraction, default=0.0)
    parser.add_argument(
        "--timeout-seconds", type=float, default=15.0, help="how long a timeout holds (15)"
    )
    parser.add_argument(
        "--timeout-creates",
        type=_fraction,
        default=0.5,
        help="fraction of timed-out imports that create the number anyway (0.5)",
    )
    parser.add_argument(
        "--late-create-seconds",
        type=float,
        default=0.0,
        help="a timed-out import that creates its number does so this long after the request "
        "arrived, so an early lookup misses it; past the hold, the answer is dropped and the "
        "number created later all the same (0: at once)",
    )
    parser.add_argument("--reset-fraction", type=_fraction, default=0.0)
    parser.add_argument(
        "--reset-creates",
        type=_fraction,
        default=0.0,
        help="fraction of reset imports that create the number anyway (0)",
    )
    parser.add_argument(
        "--rate-limit", type=float, help="requests per second per project before 429"
    )
    parser.add_argument("--duplicates", choices=("reject", "allow"), default="reject")
    parser.add_argument("--duplicate-message", default="Number has already been taken")
    parser.add_argument("--origin", choices=("signalwire", "hosted"), default="signalwire")
    parser.add_argument(
        "--s3-example-nulls",
        action="store_true",
        help="answer friendly_name, *_method and country_code as null, like SignalWire's "
        "own import example (not valid against the spec, which is the point)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The `SimConfig` the command line asks for."""
    low, high = args.latency_min_ms, args.latency_max_ms
    if args.latency_ms is not None:
        low = high = args.latency_ms
    return SimConfig(
        latency_min_ms=low,
        latency_max_ms=max(low, high),
        error_429_fraction=args.error_429_fraction,
        retry_after=args.retry_after,
        error_500_fraction=args.error_500_fraction,
        error_503_fraction=args.error_503_fraction,
        timeout_fraction=args.timeout_fraction,
        timeout_seconds=args.timeout_seconds,
        timeout_creates=args.timeout_creates,
        late_create_seconds=args.late_create_seconds,
        reset_fraction=args.reset_fraction,
        reset_creates=args.reset_creates,
        rate_limit=args.rate_limit,
        duplicates=args.duplicates,
        duplicate_message=args.duplicate_message,
        origin=args.origin,
        s3_example_nulls=args.s3_example_nulls,
    ).validate()


def projects_from_args(args: argparse.Namespace) -> list[SimProject]:
    """The projects named by ``--project``, ``--projects-file`` and ``--demo``."""
    projects = [SimProject.parse(spec) for spec in args.project]
    if args.projects_file:
        with open(args.projects_file, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, list):
            raise ValueError("the projects file must hold a JSON list")
        projects.extend(SimProject.from_dict(item) for item in data)
    if args.demo:
        projects.append(SimProject(DEMO_PROJECT_ID, DEMO_TOKEN, DEMO_SPACE_HOST))
        projects.append(
            SimProject(SECOND_DEMO_PROJECT_ID, SECOND_DEMO_TOKEN, SECOND_DEMO_SPACE_HOST)
        )
    return projects


def main(argv: list[str] | None = None) -> int:
    """Run the simulator from the command line until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        projects = projects_from_args(args)
        config = config_from_args(args)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
    )
    if not projects:
        logger.warning("no projects: every API request will get 401 (use --project or --demo)")
    simulator = Simulator(projects, config, seed=args.seed).start(args.host, args.port)
    names = ", ".join(f"{p.project_id} ({p.space_host})" for p in projects)
    # Printed after binding, so `--port 0` callers can read the real port from this line.
    print(
        f"SignalWire simulator on {simulator.api_base_url} for {names or 'no projects'}",
        file=sys.stderr,
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: simulator.stop())
    with contextlib.suppress(KeyboardInterrupt):
        while simulator.is_running:
            time.sleep(0.2)
    simulator.stop()
    return 0
