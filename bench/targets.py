"""The targets as data: each a row of `TARGETS`, judged against the results by `evaluate`.

A row names the section it reads; its checks are paths into that section's results (dotted keys), each
compared with a number or with another path. Its name and measured text are `str.format_map` templates
over the same values. Values no section stores (a ratio of two figures, a joined list) come from
`DERIVED`, computed from the section's results and never written to the JSON.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.balancer import DRAIN_SECONDS
from bench.harness import ACP, THIN

Values = dict[str, Any]
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {"<=": operator.le, "==": operator.eq}


@dataclass(frozen=True)
class Check:
    """`path` `comparison` `limit`: the limit is a number, or a path too."""

    path: str
    comparison: str
    limit: float | str


@dataclass(frozen=True)
class Target:
    """One row of the targets table; no checks makes an "(info)" row, always met."""

    section: str
    name: str
    target: str
    checks: tuple[Check, ...]
    measured: str
    why: str


def _per_call(p: Values) -> Values:
    return {"hwm_ratio": p["memory_mib"][ACP]["peak_hwm"] / p["memory_mib"][THIN]["peak_hwm"]}


def _big_run(b: Values) -> Values:
    stages = b["in_process"]
    return {
        "upstream_mb": b["upstream_bytes"] / 1e6,
        "shaped_ms": stages["shape_run"]["median"] + stages["tool_result"]["median"],
        "parse_ms": stages["json_loads"]["median"] + stages["validate"]["median"],
    }


def _polling(h: Values) -> Values:
    early = [n["noticed_after_ms"] for n in h["notice"] if n["completes_after_s"] <= 2.5]
    notices = (f"{n['noticed_after_ms']} ms after a {n['completes_after_s']:g} s run" for n in h["notice"])
    worst = (
        f"{w['worst_delay_s']:g} s if done in ({w['from_s']:g}, {w['to_s']:g}] s" for w in h["worst_case_notice"][:3]
    )
    return {
        "early_notice_max_ms": max(early, default=math.inf),  # none early: not met
        "notices": ", ".join(notices),
        "worst_cases": "; ".join(worst),
    }


def _balancer(lb: Values) -> Values:
    curve = (
        f"{n}: {lb[f'replicas_{n}']['calls_per_second']} calls/s, p99 {lb[f'replicas_{n}']['p99_ms']:.0f} ms"
        for n in (1, 2, 3)
    )
    return {"curve": ", ".join(curve)}


def _nothing(section: Values) -> Values:
    return {}


DERIVED: dict[str, Callable[[Values], Values]] = {
    "per_call": _per_call,
    "concurrency": lambda k: {"latency_ms": k["latency_s"] * 1000},
    "big_run": _big_run,
    "polling": _polling,
    "balancer": _balancer,
}

TARGETS: tuple[Target, ...] = (
    Target(
        section="per_call",
        name="per call over stdio (bare JSON-RPC client)",
        target="<= 1.2x thin",
        checks=(Check("ratio_median", "<=", 1.2),),
        measured=(
            "{acp-mcp[median]:.2f} vs {thin[median]:.2f} ms median ({ratio_median}x); "
            "p99 {acp-mcp[p99]:.2f} vs {thin[p99]:.2f} ({ratio_p99}x); direct POST {direct[median]:.2f}"
        ),
        why="what the server itself adds to a call, against the thinnest proxy on the same SDK",
    ),
    Target(
        section="per_call",
        name="per call over stdio (Python SDK `Client`)",
        target="<= 1.2x thin",
        checks=(Check("sdk_ratio_median", "<=", 1.2),),
        measured=(
            "{acp-mcp/sdk[median]:.2f} vs {thin/sdk[median]:.2f} ms median ({sdk_ratio_median}x); "
            "p99 {acp-mcp/sdk[p99]:.2f} vs {thin/sdk[p99]:.2f}; "
            "of which client-side outputSchema check {sdk_client_output_schema_validation_ms[median]:.2f} ms"
        ),
        why="what a Python MCP client sees, its outputSchema validation included",
    ),
    Target(
        section="per_call",
        name="peak RSS (VmHWM)",
        target="<= 1.15x thin",
        checks=(Check("hwm_ratio", "<=", 1.15),),
        measured="{memory_mib[acp-mcp][peak_hwm]:.1f} vs {memory_mib[thin][peak_hwm]:.1f} MiB ({hwm_ratio:.3f}x)",
        why="the memory every client's server process holds",
    ),
    Target(
        section="cold_start",
        name="cold start to tools/list",
        target="<= 1.1x thin",
        checks=(Check("ratio_paired_median", "<=", 1.1),),
        measured=(
            "{ratio_paired_median}x (median of {acp-mcp[n]} back-to-back pairs); medians "
            "{acp-mcp[median]:.0f} vs {thin[median]:.0f} ms ({ratio_median}x), "
            "min {acp-mcp[min]:.0f} vs {thin[min]:.0f} ms"
        ),
        why="clients spawn the server at every start; pairs cancel the drift of the machine's load",
    ),
    Target(
        section="cold_start",
        name="tools/list on the wire",
        target="<= 15,000 characters",
        checks=(Check("tools_list_wire_chars.acp-mcp", "<=", 15_000),),
        measured="{tools_list_wire_chars[acp-mcp]:,} characters",
        why="the tool list sits in the model's context in every conversation",
    ),
    Target(
        section="cold_start",
        name="idle RSS after tools/list",
        target="(info)",
        checks=(),
        measured="{idle_rss_mib[acp-mcp]:.1f} vs {idle_rss_mib[thin]:.1f} MiB",
        why="the memory of a server that has not been called yet",
    ),
    Target(
        section="concurrency",
        name="{concurrency} concurrent calls, one session, {latency_ms:.0f} ms upstream",
        target="<= 1.5x one call",
        checks=(Check("acp-mcp.ratio", "<=", 1.5),),
        measured=(
            "{acp-mcp[burst_wall_ms]:.0f} vs {acp-mcp[one_call_ms]:.0f} ms ({acp-mcp[ratio]}x); "
            "thin {thin[burst_wall_ms]:.0f} vs {thin[one_call_ms]:.0f} ms ({thin[ratio]}x); "
            "server CPU {acp-mcp[server_cpu_per_call_ms]} vs {thin[server_cpu_per_call_ms]} ms per call"
        ),
        why="concurrent calls in one session should overlap their upstream waits",
    ),
    Target(
        section="big_run",
        name="big run ({events:,} events, {upstream_mb:.1f} MB)",
        target="<= 100 ms, <= 25,000 chars",
        checks=(Check("shaped_ms", "<=", 100), Check("get_agent_run_chars.total", "<=", 25_000)),
        measured=(
            "shaped in {shaped_ms:.2f} ms; {get_agent_run_chars[total]:,} chars; "
            "get_agent_run {get_agent_run_stdio[median]:.0f} ms (parse {parse_ms:.0f} ms)"
        ),
        why="a huge run must stay quick to shape and small in the model's context",
    ),
    Target(
        section="polling",
        name="polling a run that never ends",
        target="<= 15 requests/min",
        checks=(Check("planned_requests_per_60s", "<=", 15), Check("hang.requests", "<=", "hang.planned_requests")),
        measured="{hang[requests]} in {hang[wait_s]:g} s real; {planned_requests_per_60s} per 60 s planned",
        why="waiting must not hammer the API, and must poll no more than the policy plans",
    ),
    Target(
        section="polling",
        name="noticing a completion",
        target="~1 s early on",
        checks=(Check("early_notice_max_ms", "<=", 1100),),
        measured="measured: {notices}; worst case by policy: {worst_cases}",
        why="a run that ends within 2.5 s is returned within about a second of its end",
    ),
    Target(
        section="http",
        name="streamable HTTP, {concurrency} sessions",
        target="(info) vs thin",
        checks=(),
        measured=(
            "{acp-mcp/bare[calls_per_second]} vs {thin/bare[calls_per_second]} calls/s ({bare_throughput_ratio}x) "
            "with bare clients; {acp-mcp[calls_per_second]} vs {thin[calls_per_second]} ({throughput_ratio}x) "
            "with SDK clients validating outputSchema"
        ),
        why="throughput over the hosted transport, with the load generator on the same cores",
    ),
    Target(
        section="token_check",
        name="OAuth access token check, in process (keys cached)",
        target="new token <= 0.3 ms median",
        checks=(Check("in_process_us.new_token.median", "<=", 300),),
        measured=(
            "new token {in_process_us[new_token][median]:.0f} µs median, p99 {in_process_us[new_token][p99]:.0f}; "
            "repeated {in_process_us[repeated_token][median]:.1f} µs, p99 {in_process_us[repeated_token][p99]:.1f}; "
            "static token {in_process_us[static_token][median]:.2f} µs, p99 {in_process_us[static_token][p99]:.2f}"
        ),
        why="a caller's first request waits for its token's signature check; later ones only for the cache",
    ),
    Target(
        section="token_check",
        name="tools/list over HTTP, static token vs OAuth (one token, `--stateless`)",
        target="(info)",
        checks=(),
        measured=(
            "p50 {tools_list_ms[static][median]:.2f} vs {tools_list_ms[oauth][median]:.2f} ms "
            "({tools_list_ms[oauth_added][median]:+.3f}); p99 {tools_list_ms[static][p99]:.2f} vs "
            "{tools_list_ms[oauth][p99]:.2f} ms ({tools_list_ms[oauth_added][p99]:+.3f})"
        ),
        why="what OAuth adds to every request end to end: the cached token, the scope check, the caller's key",
    ),
    Target(
        section="many_callers",
        name="{callers:,} OAuth callers on one `--stateless` replica, {concurrency} at a time",
        target="every call answered",
        checks=(Check("failures", "==", 0), Check("answered", "==", "callers")),
        measured=(
            "{failures} failed; {callers_per_second} callers/s ({calls_per_second} calls/s); p50 / p99 ms: "
            "tools/list with a new token {latency_ms[first_request][median]:.0f} / "
            "{latency_ms[first_request][p99]:.0f}, first call {latency_ms[first_call][median]:.0f} / "
            "{latency_ms[first_call][p99]:.0f}, repeat {latency_ms[repeat_call][median]:.0f} / "
            "{latency_ms[repeat_call][p99]:.0f}; server CPU {server_cpu_per_caller_ms:.1f} ms per caller; "
            "RSS {rss_mib[start]:.1f} -> {rss_mib[end]:.1f} MiB ({rss_kib_per_caller:.0f} KiB per caller)"
        ),
        why="each caller costs the replica a verified token, a rate bucket and an API client of its own",
    ),
    Target(
        section="balancer",
        name="HAProxy, {concurrency} clients, 1/2/3 replicas",
        target="(info)",
        checks=(),
        measured="{curve}",
        why="whether replicas behind a load balancer add throughput on this machine",
    ),
    Target(
        section="balancer",
        name="a replica drained mid-load",
        target=f"exit <= {DRAIN_SECONDS} s, every call answered",
        checks=(Check("drain.exit_seconds", "<=", DRAIN_SECONDS), Check("drain.calls_completed", "==", "calls")),
        measured=(
            "exited {drain[exit_seconds]} s after SIGTERM; {drain[calls_completed]} of {calls} calls answered, "
            "slowest {drain[max_latency_ms]:.0f} ms"
        ),
        why="a replica stopped under load finishes its calls and exits in time",
    ),
)


def _at(values: Values, path: str) -> Any:
    """The value at dotted `path` in `values`."""
    for key in path.split("."):
        values = values[key]
    return values


def _met(values: Values, checks: tuple[Check, ...]) -> bool:
    """Whether every check holds in `values`."""
    return all(COMPARISONS[c.comparison](_at(values, c.path), _limit(values, c)) for c in checks)


def _limit(values: Values, check: Check) -> Any:
    """The check's limit: a number, or the value at a path."""
    return _at(values, check.limit) if isinstance(check.limit, str) else check.limit


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target whose section ran: its name, target, measured text and whether every check is met."""
    rows: list[dict[str, Any]] = []
    for row in TARGETS:
        if row.section in results:
            section: Values = results[row.section]
            values = section | DERIVED.get(row.section, _nothing)(section)
            name, measured = row.name.format_map(values), row.measured.format_map(values)
            rows.append({"name": name, "target": row.target, "measured": measured, "met": _met(values, row.checks)})
    return rows
