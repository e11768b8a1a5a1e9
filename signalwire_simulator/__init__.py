"""A local simulator of SignalWire's Compatibility API import endpoints, like stripe-mock.

Run it with ``python -m signalwire_simulator --port 8765 --demo`` (see ``--help``), or in
process with `Simulator`. Standard library only, no Django: the run command, the tests and the
benchmarks all talk to it over real HTTP on loopback.

What it serves under ``/api/laml/2010-04-01`` (also under the legacy ``/2010-04-01`` prefix and
with an optional ``.json`` suffix, NOTES.md §8.1):

- ``POST /Accounts/{sid}/ImportedPhoneNumbers``: form-urlencoded (``capabilities``,
  ``capabilities[]``, single or repeated) or JSON; 201 IncomingPhoneNumber, 422 with a string
  ``code``, 400 for an unreadable JSON body, 401 ``{code: 20003}``.
- ``GET /Accounts/{sid}/IncomingPhoneNumbers``: paged envelope; ``PhoneNumber`` (substring
  match, like SignalWire's "pattern"), ``FriendlyName``, ``PageSize``, ``Page`` + ``PageToken``.
- ``GET /Accounts/{sid}/IncomingPhoneNumbers/{sid}``: 200, or 404 ``{code: 20404}``.
- ``GET /Accounts/{sid}``: the Account object; needs the Management scope.

Behaviour follows NOTES.md §8; what SignalWire does not document is chosen here and marked
[INF] in NOTES.md: a duplicate number gives 422 "Number has already been taken" (or, with
``duplicates="allow"``, a second number, so a test can count double imports), a disabled
Partner API gives 401/20003 on import only, a token without the Numbers scope gets the same
401 body as a wrong token, and a rate limit answers 429 with code 20429.

Faults (set by flags, or at run time with ``POST /__sim__/config``):

- latency (``latency_min_ms``..``latency_max_ms``) and the per-project ``rate_limit`` (requests
  per second, counted over every API request of the project) apply to every API request;
- ``error_429_fraction``, ``error_500_fraction``, ``error_503_fraction``, ``timeout_fraction``
  and ``reset_fraction`` apply to the import endpoint only, after authentication; one random
  draw picks at most one of them, so they must add up to 1 or less;
- a timed-out import is held ``timeout_seconds`` (past the client's read timeout) and then
  answered late with its real 201 if the number was created (``timeout_creates`` is the
  fraction that are), or dropped without an answer if not; a reset closes the connection with
  an RST after reading the request (``reset_creates`` is the fraction created anyway);
- ``late_create_seconds`` puts the creation of a timed-out import that creates its number that
  long after the request arrived, so a lookup made too early does not find it yet (0: at once).
  Past the hold, the answer is dropped and the number is created later all the same;
- a project's ``overrides`` replace these fields for its own requests, so one Space of a
  simulator can be throttled hard while another is not.

Control endpoints (loopback clients only): ``GET/POST /__sim__/config``, ``POST /__sim__/reset``
(numbers, stats and config back to the start), ``GET /__sim__/stats``, ``GET/POST
/__sim__/projects``, ``GET /__sim__/exchanges`` (the last requests and answers, Authorization
redacted).

Besides the counts per endpoint and status, the stats hold what a harness needs to catch an
engine that misbehaves under load: ``created`` and ``import_posts`` (every import POST that
names a number, counted on arrival, whatever its answer) per project and number;
``posts_after_created``, the POSTs for a number the project already held when they arrived;
``peak_rate``, the most requests of a project in any one-second window; and
``requests_per_second``, a project's requests received in each whole second since its first
(at ``first_request_at``, UNIX time), for the sustained rate and the worst second.
"""

from signalwire_simulator.faults import SimConfig
from signalwire_simulator.routes import API_PREFIX, CONTROL_PREFIX, LEGACY_PREFIX
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

__all__ = [
    "API_PREFIX",
    "CONTROL_PREFIX",
    "DEMO_PROJECT_ID",
    "DEMO_SPACE_HOST",
    "DEMO_TOKEN",
    "LEGACY_PREFIX",
    "SECOND_DEMO_PROJECT_ID",
    "SECOND_DEMO_SPACE_HOST",
    "SECOND_DEMO_TOKEN",
    "SimConfig",
    "SimProject",
    "Simulator",
]
