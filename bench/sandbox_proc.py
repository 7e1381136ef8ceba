"""The ACP sandbox in its own process, for the benchmark suite (so it shares no GIL with clients or servers).

    ACP_SANDBOX_KEY=... python -m bench.sandbox_proc [--pace 0] [--latency 0.2]

Prints ``COMPUTER_AGENTS_BASE_URL=...`` on stdout once listening and serves until stdin closes.
``--latency`` delays every ``/v1`` request by that many seconds (a ``slow`` fault armed for ever).
"""

from __future__ import annotations

import argparse
import os
import sys

from acp_mcp.sandbox import Fault, SandboxState, serve_in_thread

FOREVER = 10**12


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pace", type=float, default=0.0, help="seconds per agent step")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every /v1 request")
    args = parser.parse_args()
    state = SandboxState(api_key=os.environ["ACP_SANDBOX_KEY"], pace=args.pace)
    if args.latency > 0:
        state.inject(Fault(kind="slow", delay=args.latency, times=FOREVER))
    with serve_in_thread(state) as running:
        print(f"COMPUTER_AGENTS_BASE_URL={running.base_url}", flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin (or exits)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
