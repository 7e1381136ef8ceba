"""acp-mcp's measured cost, side by side with the floor (`bench/thin_proxy.py`) on the same SDK and sandbox.

    python -m bench [--quick] [--samples 300] [--cold-samples 30] [--json bench/results/latest.json]

Every comparison is sampled interleaved (A, B, B, A, ...) in one run, so machine noise hits both
sides alike. The sandbox runs in its own process (pace 0), the servers are spawned exactly as MCP
clients spawn them (``python -m acp_mcp`` / ``python -m bench.thin_proxy``) with the same
interpreter, and traffic stays on 127.0.0.1. Prints a table and writes JSON.

This module runs the sections (one module each) and judges the targets (`bench.targets`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from bench.balancer import bench_balancer
from bench.big_run import bench_big_run
from bench.clients import CLIENT_MODE, stdio_session
from bench.cold_start import bench_cold_start, startup_breakdown
from bench.concurrency import bench_concurrency
from bench.harness import ACP, ROOT, Sandbox, base_env, sandbox_process
from bench.http_throughput import bench_http
from bench.many_callers import bench_many_callers
from bench.per_call import bench_per_call
from bench.polling import bench_polling
from bench.processes import Children, raise_open_files_limit
from bench.targets import evaluate
from bench.token_check import bench_token_check

SECTIONS = (
    "cold_start",
    "per_call",
    "concurrency",
    "big_run",
    "polling",
    "http",
    "token_check",
    "many_callers",
    "balancer",
)


@dataclass
class Options:
    """Sample counts and loads of every section (`quick` for a smoke run); `only` limits the sections."""

    samples: int = 300
    warmup: int = 20
    cold_samples: int = 30
    concurrency: int = 100
    concurrency_rounds: int = 5
    latency: float = 0.2
    big_events: int = 10_000
    big_size: int = 1_000
    big_reps: int = 10
    poll_wait: float = 20.0
    completions: list[float] = field(default_factory=lambda: [0.6, 1.2, 2.0, 4.0, 10.0])
    http_concurrency: int = 20
    http_calls_per_round: int = 100
    http_rounds: int = 4
    balancer_calls: int = 300
    balancer_concurrency: int = 20
    new_tokens: int = 2_000
    token_repeats: int = 20_000
    token_http_samples: int = 1_000
    callers: int = 1_000
    callers_concurrency: int = 50
    only: list[str] = field(default_factory=list)

    @classmethod
    def quick(cls) -> Options:
        """Minimal counts: every section runs, its figures mean nothing."""
        return cls(
            samples=10,
            warmup=2,
            cold_samples=1,
            concurrency=10,
            concurrency_rounds=1,
            latency=0.05,
            big_events=1_000,
            big_reps=2,
            poll_wait=1.0,
            completions=[0.6],
            http_concurrency=2,
            http_calls_per_round=4,
            http_rounds=1,
            balancer_calls=12,
            balancer_concurrency=2,
            new_tokens=100,
            token_repeats=1_000,
            token_http_samples=20,
            callers=100,
            callers_concurrency=10,
        )

    def wanted(self) -> list[str]:
        """The sections to run."""
        return self.only or list(SECTIONS)


async def big_run_and_polling(sandbox: Sandbox, options: Options) -> dict[str, Any]:
    """The wanted ones of both sections in one acp-mcp stdio session (one server start fewer): the big run's
    results, with the polling results under ``polling``."""
    async with stdio_session(ACP, base_env(sandbox.base_url), Children()) as session:
        big: dict[str, Any] = {}
        if "big_run" in options.wanted():
            big = await bench_big_run(sandbox, options.big_events, options.big_size, options.big_reps, session)
        if "polling" in options.wanted():
            began = time.perf_counter()
            big["polling"] = await bench_polling(sandbox, options.poll_wait, options.completions, session)
            big["polling"]["section_seconds"] = round(time.perf_counter() - began, 1)
        return big


def _runners(sandbox: Sandbox, o: Options) -> dict[str, Callable[[], dict[str, Any]]]:
    """Each section's run, by name (``big_run`` also runs ``polling``)."""
    return {
        "cold_start": lambda: bench_cold_start(sandbox, o.cold_samples),
        "per_call": lambda: anyio.run(bench_per_call, sandbox, o.samples, o.warmup),
        "concurrency": lambda: anyio.run(bench_concurrency, o.concurrency, o.concurrency_rounds, o.latency),
        "big_run": lambda: anyio.run(big_run_and_polling, sandbox, o),
        "http": lambda: anyio.run(bench_http, sandbox, o.http_concurrency, o.http_calls_per_round, o.http_rounds),
        "token_check": lambda: bench_token_check(
            sandbox, o.new_tokens, o.token_repeats, o.token_http_samples, o.warmup
        ),
        "many_callers": lambda: bench_many_callers(sandbox, o.callers, o.callers_concurrency),
        "balancer": lambda: bench_balancer(base_env(sandbox.base_url), o.balancer_calls, o.balancer_concurrency),
    }


def run_suite(options: Options, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every section (or `options.only`) and return the results."""
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_before": list(os.getloadavg()),
        "options": dataclasses.asdict(options),
        "client_mode": CLIENT_MODE,
    }
    wanted = options.wanted()
    raise_open_files_limit()  # before the sandbox starts: ``many_callers`` opens a connection per caller
    with sandbox_process() as sandbox:
        for name, run in _runners(sandbox, options).items():
            # ``big_run`` also measures ``polling``: it runs when either is wanted, and keeps what is
            shown = "polling" if name == "big_run" and name not in wanted else name
            if shown not in wanted:
                continue
            report(f"... {shown}")
            began = time.perf_counter()
            section = run()
            section["section_seconds"] = round(time.perf_counter() - began, 1)
            polling = section.pop("polling", None) if name == "big_run" else None
            if name in wanted:
                results[name] = section
            if polling is not None:
                results["polling"] = polling
    if "cold_start" in wanted and options.cold_samples > 1:
        results["cold_start"]["startup_breakdown_ms"] = startup_breakdown(5)
    results["load_after"] = list(os.getloadavg())
    results["targets"] = evaluate(results)
    return results


def render(results: dict[str, Any]) -> str:
    """The targets as a markdown table, and the machine they were measured on."""
    lines = ["| Measure | Target | Measured (acp-mcp vs thin proxy) | Met |", "|---|---|---|---|"]
    lines += [
        f"| {r['name']} | {r['target']} | {r['measured']} | {'yes' if r['met'] else '**no**'} |"
        for r in results["targets"]
    ]
    load = ", ".join(f"{x:.2f}" for x in results["load_before"])
    lines.append(f"\nPython {results['python']}, {results['cpus']} CPUs, load average before: {load}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench``: run the suite, print the table, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="minimal sample counts (a smoke test, not a measurement)")
    parser.add_argument("--samples", type=int, help="per-call samples per side (default 300)")
    parser.add_argument("--cold-samples", type=int, help="cold starts per side (default 30)")
    parser.add_argument("--poll-wait", type=float, help="seconds of real waiting on a hung run (default 20)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json", help="JSON output")
    args = parser.parse_args(argv)
    options = Options.quick() if args.quick else Options()
    if args.samples:
        options.samples = args.samples
    if args.cold_samples:
        options.cold_samples = args.cold_samples
    if args.poll_wait:
        options.poll_wait = args.poll_wait
    options.only = args.only or []
    results = run_suite(options, report=lambda line: print(line, file=sys.stderr, flush=True))
    print(render(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0
