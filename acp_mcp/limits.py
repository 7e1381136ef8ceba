"""Every cap and default the model, the caller or the API sees, each with why; imported wherever it applies.

Changing one changes the product: the contract snapshots, the README's tables and the manifest
follow (see CONTRIBUTING.md).
"""

from __future__ import annotations

# -- what a tool accepts ---------------------------------------------------------------------------

MAX_ID_CHARS = 256
"""Longest serverId or resourceRunId: API ids are short; a longer one is a pasted mistake."""
MAX_TEXT_CHARS = 100_000
"""Longest ``content`` or ``prompt``: far above a turn's text, below what would stall the API."""
MAX_TITLE_CHARS = 1_000
"""Longest ``title``: titles are shown in lists."""
MAX_METADATA_CHARS = 16_384
"""Largest ``metadata``, measured as compact JSON: labels, not payloads."""

# -- how long a call waits -------------------------------------------------------------------------

DEFAULT_WAIT_SECONDS = 45.0
"""A call's wait when none is given: under the 60 s many clients allow a tool call."""
MAX_WAIT_SECONDS = 600.0
"""Upper bound for any wait; progress notifications keep longer waits alive on clients that allow it."""
FIRST_POLL_SECONDS = 0.5
"""Most short turns end within a second or two, so an early end is noticed within about a second."""
POLL_GROWTH = 1.5
"""Polls then spread out by this factor: a minute of waiting costs 13 polls, not 60."""
MAX_POLL_SECONDS = 8.0
"""The widest gap between polls, so a run's end is seen within 8 s."""
PROGRESS_WORD_CHARS = 40
"""A progress message shows a run's status and the latest event's role cut here..."""
PROGRESS_TEXT_CHARS = 120
"""...and the latest event's content cut here: one line in a client's status bar."""
PROGRESS_SECONDS = 5.0
"""Progress goes out this often while a call waits: clients that reset their timeout on progress keep it."""
GRACE_SECONDS = 5.0
"""What a call may take past its wait (or one request timeout): the last poll and the events fetch."""
LOST_START_SEARCH_RUNS = 10
"""A start whose answer was lost is looked for (by its marker) among the server's newest runs, this many."""

# -- what a result holds (any result stays under 25,000 characters) ----------------------------------

OUTPUT_CHARS = 4_000
"""The run's ``output`` is cut here: the answer, not a transcript."""
EVENTS_CHARS = 8_000
"""The listed events share this much content: 400 each for the default 20, all of it for one."""
MIN_EVENT_CHARS = 200
"""No listed event's content is cut shorter than this, however many are listed."""
ERROR_CHARS = 1_000
"""The run's error text is cut here."""
FIELD_CHARS = 300
"""Other text fields of a run (title, input, ids...) are cut here."""
OBJECT_CHARS = 1_000
"""``metadata`` and ``thread`` are dropped when their JSON passes this."""
EVENT_FIELD_CHARS = 80
"""Longest event id, role, logType, logLevel or createdAt shown."""
TEXT_OUTPUT_CHARS = 1_500
"""The text twin shows this much output: the structured result has the rest."""
TEXT_EVENTS = 5
"""The text twin shows the latest few events."""
TEXT_EVENT_CHARS = 200
"""...each cut here."""
DEFAULT_MAX_EVENTS = 20
"""Events listed when the call does not say: enough to follow a turn."""
MAX_MAX_EVENTS = 40
"""Most events one call lists; older ones are paged to with eventOffset or read in the run resource."""
MAX_LIST_RUNS = 40
"""Most runs one list_agent_runs call returns."""
LIST_TEXT_CHARS = 8_000
"""The runs listed share this much text over their title, input, output and error."""
LIST_FIELD_MIN_CHARS = 40
"""...none of them cut under this, however many runs are listed."""
LIST_LINE_CHARS = 80
"""The text twin of a run list gives each run one line, its title or input cut here."""
WAITED_DECIMALS = 2
"""``waitedSeconds`` is rounded to hundredths: the polls are no finer."""
ERROR_FIELD_CHARS = 300
"""Longest upstream message, code or detail text kept on an error."""
ERROR_DETAILS = 5
"""Most rejected fields kept from an error envelope's ``details``."""
ERROR_CODE_CHARS = 100
"""Longest error code or rejected field name kept: codes and names are short."""
ERROR_DETAIL_CHARS = 200
"""Longest message kept for one rejected field."""

# -- what is read from the API ---------------------------------------------------------------------

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Largest success body read (a 10,000-event, 10 MB run is about 12 MB of JSON)."""
MAX_ERROR_BYTES = 64 * 1024
"""Largest error body read; only the envelope's short fields are kept."""
EVENTS_POLL_LIMIT = 200
"""Polls read ``/events`` while a run has at most this many events, then the light run GET."""
DEFAULT_REQUEST_TIMEOUT = 30.0
"""Seconds one HTTP request to the API may take: its answers come in well under a second."""
CONNECT_SECONDS = 10.0
"""Seconds to open a connection to the API (within a request's time): longer means it is unreachable."""
ANSWER_SLACK_SECONDS = 1.0
"""What a request may overrun its timeout before it is abandoned: httpx2's timeouts are per read, not per answer."""
UNBOUNDED_CALL_TIMEOUTS = 2
"""A request with no call deadline (list, cancel, the resource) and its retries end within this many timeouts."""
INVALID_FIELDS_SHOWN = 5
"""Fields of the wrong type named when an API answer cannot be read."""
MAX_API_CONNECTIONS = 100
"""Connections one caller's client keeps open to the API at most (httpx's default pool)."""
MAX_SYNC_REQUESTS = 50
"""Of those, how many ``mode: "sync"`` requests may hold at once (each holds one for a whole turn), so the
rest of the pool stays free for polls, gets and cancels."""
POOL_WAIT_SECONDS = 5.0
"""How long a request waits for a free connection before the call is answered "busy"."""
RETRY_ATTEMPTS = 4
"""Tries per request, the first included, for what is safe to retry."""
RETRY_BASE_SECONDS = 0.25
"""First backoff (full jitter), doubling per retry; Retry-After wins when sent."""
RETRY_MAX_SECONDS = 8.0
"""Longest backoff between tries."""
COMPLETION_VALUES = 100
"""Most values a completion returns (the protocol's limit)."""
COMPLETION_LOOKUP = 100
"""How many servers or runs one completion lookup asks the API for (the sandbox's largest page)."""
BINDINGS_TTL_SECONDS = 60.0
"""A server's bindings (whether it can run agents) are remembered this long for completions: they change rarely."""
BINDINGS_AT_ONCE = 8
"""Bindings one completion asks for at once, so a key that sees many servers leaves the API pool to the calls."""
FALLBACK_LIST_LIMIT = 50
"""A list refused for its ``limit`` is asked again with this one (the agents list's documented default; the run
and server lists document no bounds), then with none."""

# -- what one process keeps ------------------------------------------------------------------------

REPEAT_WINDOW_SECONDS = 600.0
"""How long after a cancelled start an identical one is answered with its run."""
MAX_REMEMBERED_STARTS = 256
"""Cancelled starts kept at most (the oldest are forgotten first)."""
MAX_LISTEN_STREAMS = 1_024
"""Listen streams open at once in a process (the SDK's own bound)."""
MAX_WATCHED_RUNS = 1_000
"""Runs a process polls for subscribers at once, all callers together: a poll every few seconds each."""
MAX_RUNS_PER_SUBSCRIBER = 16
"""Run URIs one session or listen stream may watch at once: each costs a poll."""
MAX_TASK_ID_CHARS = 4_096
"""Longest task id read; ours stay under about 1,000 characters (two ids of at most 256 characters)."""
DEFAULT_MAX_WAITS = 500
"""Calls a process lets wait on runs at once (each polls every few seconds); more are told to retry. At 500 waits
ending together every answer still came within its wait + 5 s on two loaded cores; at 1,000, 7 s late."""
BUSY_RETRY_SECONDS = 5.0
"""A call refused at a limit is told to retry after this long: a short wait frees a slot within seconds."""
LIST_TTL_MS = 3_600_000
"""How long clients may keep the tool, resource and prompt lists: they change only with a restart."""

# -- serving ---------------------------------------------------------------------------------------

DEFAULT_CALLER_RATE = 20.0
"""Requests per second one caller may make on average: far above a person's pace, under a runaway loop's."""
DEFAULT_CALLER_BURST = 60
"""Requests one caller may make at once above its rate: a client's start-up and a burst of parallel calls."""
MAX_CALLERS = 1_000
"""Callers whose API client (and its connection pool) a process keeps; the least recent is closed first."""
DEFAULT_MAX_SESSIONS = 1_000
"""MCP sessions a process keeps open at once (the SDK allows 10,000: about 40 KB each, and a flood of bare
``initialize`` calls then locked new clients out for half an hour)."""
DEFAULT_SESSION_IDLE_SECONDS = 600.0
"""A session with no request for this long is closed; its client opens a new one (the SDK's default is 30 min)."""
MAX_STREAM_SECONDS = 300.0
"""A GET stream is ended after this long, or the session idle time if shorter (its client reconnects), so a stream
nobody reconnects cannot keep a session alive."""
SESSION_OWNERS_PER_SESSION = 2
"""Session openers remembered per session allowed: those of sessions that ended are forgotten oldest first."""
MAX_RATE_BUCKETS = 100_000
"""Callers whose rate a process tracks; the least recent is forgotten first (it starts again full)."""
JWKS_REFRESH_SECONDS = 10.0
"""The issuer's keys are refetched for a token with an unknown ``kid`` (a rotation), at most this often..."""
JWKS_MAX_AGE_SECONDS = 3_600.0
"""...and at least this often, so a removed key stops being trusted."""
TOKEN_LEEWAY_SECONDS = 30.0
"""How far the issuer's clock may be off ours when a token's ``exp`` and ``nbf`` are checked."""
MAX_VERIFIED_TOKENS = 10_000
"""Verified tokens remembered (until they expire), so a token is checked once, not per request."""
MAX_REQUEST_BYTES = 1024 * 1024
"""Largest MCP request body; more is answered 413 unread. The largest call (100,000 characters of content and
16 KiB of metadata) fits; a body this size of tiny JSON keys costs about 0.1 s to parse (the SDK's 4 MiB, 0.4 s)."""
KEYS_FILE_CHECK_SECONDS = 1.0
"""The keys file is checked for changes at most this often."""
CONNECT_LINK_SECONDS = 600.0
"""A connect link works for this long (and once): time to find the key and paste it."""
SIGNIN_SECONDS = 600.0
"""A browser signed in at the issuer for the connect page stays signed in this long (then signs in again)."""
CONNECT_FORM_BYTES = 4_096
"""Largest connect form read: a key and a link."""
CONNECTED_KEY_SECONDS = 10.0
"""A connected key read from the store is reused this long before it is read again (a disconnect takes this long
to reach every replica)."""
DEFAULT_READ_TIMEOUT = 10.0
"""A request's headers and body must arrive within this (HAProxy's usual ``timeout http-request``), or its
connection is closed: a connection that sends nothing, or trickles, cannot be held."""
DEFAULT_WRITE_TIMEOUT = 30.0
"""A response the client does not read for this long is dropped with its connection (nothing is pinned)."""
DEFAULT_MAX_CONNECTIONS = 10_000
"""Connections accepted at once at most, and less where the process's file limit is lower..."""
RESERVED_FILES = 256
"""...by this many, kept for the API's connections, the key store and the logs."""
MIN_CONNECTIONS = 64
"""The cap never goes below this, however low the file limit."""
MAX_HEADERS = 100
"""Most header lines a request may carry (a browser sends about 20); more is answered 431."""
MAX_HEADER_BYTES = 16_384
"""Most bytes of header names and values; more is answered 431 (h11 refuses a raw head twice this still arriving)."""
LOG_WINDOW_SECONDS = 60.0
"""A warning or error that repeats is logged once in this long per cause, then with how many were held back."""
LOG_CAUSES = 1_000
"""Causes remembered for that; the least recent is forgotten first."""
MIN_TOKEN_CHARS = 16
"""Shortest caller token accepted: anything shorter is guessable."""
DEFAULT_DRAIN_SECONDS = 20.0
"""Under the usual 30 s an orchestrator allows between SIGTERM and SIGKILL."""
EXIT_SECONDS = 1.0
"""Once the drain is over (or a second signal came), the process is gone within this, whatever is still open."""
DEFAULT_DRAIN_DELAY_SECONDS = 5.0
"""After SIGTERM a replica is not ready but serves on this long, so a balancer's health checks (every 1-2 s,
2 failures) take it out of rotation before it refuses anything; the Kubernetes example's grace covers both."""
DEFAULT_HOST = "127.0.0.1"
"""Streamable HTTP listens on loopback unless told otherwise: nothing is exposed by accident."""
DEFAULT_PORT = 8000
"""Streamable HTTP's port: the usual one for a local web service."""
DEFAULT_SANDBOX_PACE = 0.5
"""Seconds per step of the sandbox's echo agent: slow enough to watch a run progress."""
DEMO_PACE = 0.2
"""The demo's sandbox pace: its runs finish within the demo's waits in a second or two."""
DEFAULT_SANDBOX_PORT = 8765
"""The standalone sandbox's port: clear of the MCP server's."""

# -- what telemetry records ------------------------------------------------------------------------

TRACE_CONTENT_CHARS = 4_000
"""With ``ACP_MCP_TRACE_CONTENT``, a tool call's arguments and result go on its span cut here: collectors
drop or truncate larger attributes, and a result is under 25,000 characters anyway."""
