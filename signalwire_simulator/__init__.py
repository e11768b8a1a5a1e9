"""A local simulator of SignalWire's Compatibility API import endpoints, like stripe-mock.

Run it with ``python -m signalwire_simulator --port 8765 --demo`` (see ``--help``), or in
process with `Simulator`. Standard library only, no Django: the run command, the tests and the
benchmarks all talk to it over real HTTP on loopback.

What it serves under ``/api/laml/2010-04-01`` (also under the legacy ``/2010-04-01`` prefix and
with an optional ``.json`` suffix, NOTES.md §8.1):

- ``POST /Accounts/{sid}/ImportedPhoneNumbers``: form-urlencoded (``capabilities``,
  ``capabilities[]``, single or repeated) or JSON; 201 IncomingPhoneNumber, 422 with a string
  ``code``, 400 for an unreadable JSON body, 401 ``{code: 20003}``.
- ``GET /Accounts/{sid}/IncomingPhoneNumbers``: the paged envelope (``uri``,
  ``first_page_uri``, ``next_page_uri``, ``previous_page_uri``, ``page``, ``page_size``,
  ``incoming_phone_numbers``), oldest first; ``PhoneNumber`` (substring match, like
  SignalWire's "pattern"), ``FriendlyName``, ``PageSize`` (1 to 1000, default 50), ``Page`` +
  ``PageToken`` (required past page 0, else 400 with code 54453). A token names the record
  its page starts after, so numbers added or released between pages neither repeat nor hide
  the rest; a page costs about its own size, whatever the size of the Space.
- ``GET /Accounts/{sid}/IncomingPhoneNumbers/{sid}``: 200, or 404 ``{code: 20404}``.
- ``POST /Accounts/{sid}/IncomingPhoneNumbers/{sid}`` (form or JSON): 200 with the changed
  number. ``AccountSid`` moves it to another project of the same Space (400 otherwise);
  ``FriendlyName``, ``VoiceUrl``, ``VoiceFallbackUrl``, ``SmsUrl``, ``SmsFallbackUrl``,
  ``StatusCallback`` and their ``…Method`` (GET or POST) are kept; other documented fields
  are accepted and ignored. 404 ``{code: 20404}`` for an unknown sid.
- ``DELETE /Accounts/{sid}/IncomingPhoneNumbers/{sid}``: releases the number, 204 with no
  body; 404 ``{code: 20404}`` if the project does not hold it.
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

Control endpoints (loopback clients only; JSON bodies; a bad body is 400 ``{"error": …}``
naming what to fix, an unknown project or number 404 ``{"error": …}``):

- ``GET/POST /__sim__/config``, ``POST /__sim__/reset`` (numbers, stats and config back to the
  start), ``GET /__sim__/stats``, ``GET/POST /__sim__/projects``, ``GET /__sim__/exchanges``
  (the last requests and answers, Authorization redacted).
- The Space changing by other routes than the portal. ``{id}`` is a project id; ``{number}``
  is a number's sid or its E.164 phone number (``+`` or ``%2B``):

  - ``POST /__sim__/projects/{id}/numbers`` with ``{"numbers": ["+1…", …]}`` or
    ``{"count": 100000, "start": "+14150000000"}`` (``count`` consecutive numbers from
    ``start``), optionally ``"number_type"`` (``longcode`` or ``tollfree``; default
    ``longcode``) and ``"capabilities"`` (default all four): numbers "bought in the
    dashboard", origin ``signalwire``, all or none (400 if the project holds one already).
    201 ``{"added": N, "sids": [...]}``, the sids in the order of the numbers;
  - ``DELETE /__sim__/projects/{id}/numbers/{number}``: released; 200 with the record it had;
  - ``POST /__sim__/projects/{id}/numbers/{number}`` with ``{"capabilities": [...]}`` and/or
    ``{"project_id": "<another project of the same Space>"}``: 200 with the new record (the
    same sid; moved, it is listed last in its new project).

- A list that fails, so a sync killed mid-way can be tested:
  ``POST /__sim__/projects/{id}/list-fault`` with ``{"fault": "500", "after_pages": 2,
  "times": 1}`` (``fault``: ``500``, ``503``, ``reset`` (the connection closed with an RST) or
  ``timeout`` (held ``timeout_seconds``, then dropped); all three optional, defaults as shown):
  the project's next ``after_pages`` list requests are answered, the ``times`` after them
  fail, then the list works again. 200 with the state; ``GET`` the same path gives it with
  its counts (``served``, ``failed``) or null; ``DELETE`` disarms it. A reset clears it.

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
