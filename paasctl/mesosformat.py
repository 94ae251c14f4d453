"""Mesos' v0 operator JSON as paasctl's tables and summaries: pure functions, no I/O.

Kept apart from the commands so they can be tested against documented samples without a cluster
(tests/unit/test_paasctl_format.py), and reused where other commands print tables (``dev status``).
Every field may be missing — an older master or agent, a standby, protobuf-style ``{"value": …}`` ids —
and then shows as ``-`` or an empty table, never as an error.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def num(value: Any) -> str:
    """A resource amount as Mesos shows it: at most 3 decimals, no trailing zeros; ``-`` if unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def used_of(used: Mapping[str, Any] | None, total: Mapping[str, Any] | None, name: str) -> str:
    """``used/total`` of one scalar of two v0 resource maps."""
    return f"{num((used or {}).get(name, 0.0))}/{num((total or {}).get(name, 0.0))}"


def yes_no(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; an empty table is its header alone."""
    all_rows = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in all_rows)


def format_time(epoch: Any) -> str:
    if not isinstance(epoch, int | float) or isinstance(epoch, bool) or epoch <= 0:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def format_duration(seconds: float) -> str:
    s = max(int(seconds), 0)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d"] if d else []
    if d or h:
        parts.append(f"{h}h")
    if d or h or m:
        parts.append(f"{m}m")
    return "".join([*parts, f"{s}s"])


def _id(obj: Any) -> str:
    """IDs are plain strings in the v0 model and ``{"value": …}`` in protobuf JSON: accept both."""
    if isinstance(obj, dict):
        return str(obj.get("value", "-"))
    return "-" if obj in (None, "") else str(obj)


def list_of(doc: Any, key: str) -> list[dict[str, Any]]:
    """The objects of ``doc[key]`` (nothing when it is missing or not a list)."""
    value = doc.get(key) if isinstance(doc, dict) else None
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _dict(doc: Any, key: str) -> dict[str, Any]:
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, dict) else {}


def state_tasks(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every task of a ``/master/state`` (live, unreachable, completed), as ``/master/tasks`` lists them."""
    return [
        t
        for fw in list_of(state, "frameworks") + list_of(state, "completed_frameworks")
        for key in ("tasks", "unreachable_tasks", "completed_tasks")
        for t in list_of(fw, key)
    ]


def format_summary(state: Mapping[str, Any], url: str, now: float) -> str:
    """``master state``: who leads, since when, and how much runs."""
    frameworks = list_of(state, "frameworks")
    active_fw = sum(1 for f in frameworks if f.get("active"))
    live = [t for f in frameworks for t in list_of(f, "tasks")]
    by_state: dict[str, int] = {}
    for t in live:
        by_state[str(t.get("state", "?"))] = by_state.get(str(t.get("state", "?")), 0) + 1
    slaves = list_of(state, "slaves")
    active = state.get("activated_slaves", sum(1 for s in slaves if s.get("active")))
    elected = state.get("elected_time")
    leader = state.get("leader") or "-"
    is_self = leader == state.get("pid")
    rows = [
        ("leader", f"{leader} ({url})" if is_self else f"{leader} (asked {url})"),
        ("master id", str(state.get("id", "-"))),
        ("version", str(state.get("version", "-"))),
        ("started", format_time(state.get("start_time"))),
        (
            "elected",
            f"{format_time(elected)} (leading for {format_duration(now - elected)})"
            if isinstance(elected, int | float) and not isinstance(elected, bool)
            else "-",
        ),
        (
            "agents",
            f"{num(active)} active, {num(state.get('deactivated_slaves', 0))} deactivated, "
            f"{num(state.get('unreachable_slaves', 0))} unreachable",
        ),
        (
            "frameworks",
            f"{active_fw} active, {len(frameworks) - active_fw} inactive, "
            f"{len(list_of(state, 'completed_frameworks'))} completed",
        ),
        ("tasks", ", ".join(f"{n} {s}" for s, n in sorted(by_state.items())) or "none running"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def agents_table(slaves: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        (
            _id(s.get("id")),
            str(s.get("hostname", "-")),
            used_of(s.get("used_resources"), s.get("resources"), "cpus"),
            used_of(s.get("used_resources"), s.get("resources"), "mem"),
            used_of(s.get("used_resources"), s.get("resources"), "disk"),
            yes_no(s.get("active")),
        )
        for s in slaves
    ]
    return table(("ID", "HOSTNAME", "CPUS", "MEM(MB)", "DISK(MB)", "ACTIVE"), rows)


def frameworks_table(frameworks: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        (
            _id(f.get("id")),
            str(f.get("name", "-")),
            yes_no(f.get("active")),
            str(len(list_of(f, "tasks"))),
            num(_dict(f, "used_resources").get("cpus", 0.0)),
            num(_dict(f, "used_resources").get("mem", 0.0)),
        )
        for f in frameworks
    ]
    return table(("ID", "NAME", "ACTIVE", "TASKS", "CPUS", "MEM(MB)"), rows)


def task_healthy(task: Mapping[str, Any]) -> str:
    """The latest ``healthy`` any status reported (Mesos sets it on RUNNING updates with a health check)."""
    for status in reversed(list_of(task, "statuses")):
        if "healthy" in status:
            return yes_no(status["healthy"])
    return yes_no(task.get("healthy"))


def tasks_table(tasks: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        (
            _id(t.get("id", t.get("task_id"))),
            str(t.get("name", "-")),
            _id(t.get("framework_id")),
            _id(t.get("slave_id", t.get("agent_id"))),
            str(t.get("state", "-")),
            task_healthy(t),
        )
        for t in tasks
    ]
    return table(("ID", "NAME", "FRAMEWORK", "AGENT", "STATE", "HEALTHY"), rows)


def _add_maps(maps: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in maps:
        for k, v in m.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[k] = out.get(k, 0.0) + float(v)
    return out


def agent_used(state: Mapping[str, Any]) -> dict[str, float]:
    """Scalars in use on an agent: its executors' resources (in Mesos they include their tasks'); an
    executor without a resources map counts its tasks'."""
    maps: list[Mapping[str, Any]] = []
    for fw in list_of(state, "frameworks"):
        for ex in list_of(fw, "executors"):
            res = ex.get("resources")
            if isinstance(res, dict):
                maps.append(res)
            else:
                maps.extend(
                    t["resources"] for t in list_of(ex, "tasks") if isinstance(t.get("resources"), dict)
                )
    return _add_maps(maps)


def agent_resources(state: Mapping[str, Any]) -> dict[str, Any]:
    total = _dict(state, "resources")
    used = agent_used(state)
    return {
        "id": state.get("id"),
        "hostname": state.get("hostname"),
        "total": total,
        "used": {k: used.get(k, 0.0) for k, v in total.items() if isinstance(v, int | float)} | used,
    }


def resources_table(summary: Mapping[str, Any]) -> str:
    total, used = summary["total"], summary["used"]
    rows = []
    for name in dict.fromkeys([*total, *used]):
        t, u = total.get(name), used.get(name)
        scalar = isinstance(t, int | float) and not isinstance(t, bool)
        free = num(t - (u or 0.0)) if scalar else "-"
        rows.append((name, num(t) if t is not None else "-", num(u) if scalar or u else "-", free))
    head = f"agent {summary.get('id') or '-'} ({summary.get('hostname') or '-'})"
    return head + "\n" + table(("RESOURCE", "TOTAL", "USED", "FREE"), rows)


def _mb(value: Any) -> str:
    return num(value / 1048576) if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def containers_table(entries: Iterable[Mapping[str, Any]]) -> str:
    """``/containers`` (or ``/monitor/statistics``, which has no container id) as a table."""
    rows = []
    for e in entries:
        st = _dict(e, "statistics")
        cpu_time = [st.get(k) for k in ("cpus_user_time_secs", "cpus_system_time_secs")]
        known = [x for x in cpu_time if isinstance(x, int | float)]
        rows.append(
            (
                _id(e.get("container_id")),
                _id(e.get("framework_id")),
                _id(e.get("executor_id")),
                num(st.get("cpus_limit")),
                f"{_mb(st.get('mem_rss_bytes', st.get('mem_total_bytes')))}/{_mb(st.get('mem_limit_bytes'))}",
                num(sum(known)) if known else "-",
            )
        )
    return table(("CONTAINER", "FRAMEWORK", "EXECUTOR", "CPUS", "MEM(MB)", "CPU-SECS"), rows)
