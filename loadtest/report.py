"""Summary JSON and plots of one Locust run, from the CSV files Locust wrote.

    python -m loadtest.report loadtest/results/<run>/     # rebuild summary.json and the PNGs

Inputs (in the run directory): locust_stats.csv (totals per endpoint),
locust_stats_history.csv (one row per endpoint per second with --csv-full-history;
its percentiles cover a sliding window of about the last 10 s),
locust_failures.csv, and cpu.csv (CPU of each stack process, when sampled).
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

AGGREGATED = "Aggregated"
RATE_WINDOW = 6.0  # seconds: a multiple of the 3 s between worker reports in distributed runs


def _float(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory_gb = None
    try:
        from importlib.metadata import version

        locust_version = version("locust")
    except Exception:  # noqa: BLE001 - the machine description is best effort
        locust_version = None
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": memory_gb, "python": platform.python_version(),
            "platform": platform.platform(), "locust": locust_version}


def endpoint_stats(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    endpoints, total = [], {}
    for row in _rows(run_dir / "locust_stats.csv"):
        entry = {
            "method": row["Type"], "name": row["Name"],
            "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "requests_per_s": round(float(row["Requests/s"]), 1),
            "avg_ms": round(float(row["Average Response Time"]), 1),
            "p50_ms": _float(row["50%"]), "p95_ms": _float(row["95%"]), "p99_ms": _float(row["99%"]),
            "max_ms": round(float(row["Max Response Time"]), 1),
        }
        entry["failure_ratio"] = round(entry["failures"] / entry["requests"], 5) if entry["requests"] else 0.0
        if row["Name"] == AGGREGATED:
            total = entry
        else:
            endpoints.append(entry)
    return endpoints, total


def failures(run_dir: Path, top: int = 20) -> list[dict[str, Any]]:
    rows = sorted(_rows(run_dir / "locust_failures.csv"), key=lambda r: -int(r["Occurrences"]))
    return [{"method": r["Method"], "name": r["Name"], "error": r["Error"][:400], "occurrences": int(r["Occurrences"])}
            for r in rows[:top]]


def exceptions(run_dir: Path, top: int = 10) -> list[dict[str, Any]]:
    """Errors raised inside the locustfile itself (a bug there, not a failed request)."""
    rows = sorted(_rows(run_dir / "locust_exceptions.csv"), key=lambda r: -int(r["Count"]))
    return [{"message": r["Message"][:400], "count": int(r["Count"]), "where": r["Traceback"].strip()[-400:]}
            for r in rows[:top]]


def history(run_dir: Path) -> dict[str, list[dict[str, float | None]]]:
    """Per endpoint (and Aggregated), the per-second series of rps, failures/s, p50/p95/p99 and users."""
    series: dict[str, list[dict[str, float | None]]] = defaultdict(list)
    for row in _rows(run_dir / "locust_stats_history.csv"):
        name = row["Name"] if row["Name"] == AGGREGATED else f"{row['Type']} {row['Name']}"
        series[name].append({
            "t": float(row["Timestamp"]), "users": _float(row["User Count"]), "rps": _float(row["Requests/s"]),
            "fails": _float(row["Failures/s"]), "p50": _float(row["50%"]), "p95": _float(row["95%"]),
            "p99": _float(row["99%"]), "total": _float(row["Total Request Count"]),
            "failed": _float(row["Total Failure Count"]),
        })
    for points in series.values():
        _windowed_rates(points)
    return dict(series)


def _windowed_rates(points: list[dict[str, float | None]], window: float = RATE_WINDOW) -> None:
    """Requests/s and failures/s from the cumulative counts over the last `window` seconds.

    Locust's own current rate reads 0 on a distributed master between worker
    reports (every 3 s); differences of the totals are right in both modes.
    """
    start = 0
    for point in points:
        while points[start]["t"] < point["t"] - window:
            start += 1
        first = points[start]
        span = point["t"] - first["t"]
        if span <= 0 or point["total"] is None or first["total"] is None:
            point["rate"], point["fail_rate"] = None, None
            continue
        point["rate"] = (point["total"] - first["total"]) / span
        point["fail_rate"] = ((point["failed"] or 0) - (first["failed"] or 0)) / span


def cpu_by_process(run_dir: Path) -> dict[str, dict[str, float]]:
    """Mean and peak CPU (% of one core) of each sampled process while requests were flowing."""
    samples: dict[str, list[float]] = defaultdict(list)
    rss: dict[str, float] = defaultdict(float)
    for row in _rows(run_dir / "cpu.csv"):
        samples[row["process"]].append(float(row["cpu_percent"]))
        rss[row["process"]] = max(rss[row["process"]], float(row["rss_mb"]))
    out = {}
    for name, values in samples.items():
        busy = values[2:-2] or values  # drop start-up and shut-down seconds
        out[name] = {"mean": round(sum(busy) / len(busy), 1), "max": round(max(busy), 1),
                     "peak_rss_mb": round(rss[name], 1)}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["mean"]))


def summarise(run_dir: Path, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    endpoints, total = endpoint_stats(run_dir)
    cpu = cpu_by_process(run_dir)
    summary = {
        **(meta or {}),
        "machine": machine(),
        "totals": total,
        "endpoints": endpoints,
        "failures": failures(run_dir),
        "exceptions": exceptions(run_dir),
        "cpu_percent_of_one_core": cpu,
        "busiest_process": next(iter(cpu), None),
    }
    summary["passed"] = (total.get("requests", 0) > 0 and total.get("failures", 1) == 0
                         and not summary["exceptions"] and (meta or {}).get("locust_exit_code", 0) == 0)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def plot(run_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = history(run_dir)
    if not series:
        return []
    t0 = min(point["t"] for points in series.values() for point in points)
    names = sorted(n for n in series if n != AGGREGATED)
    written = []

    fig, ax = plt.subplots(figsize=(12, 6))
    for name in names:
        points = series[name]
        ax.plot([p["t"] - t0 for p in points], [p["rate"] or 0 for p in points], label=name, linewidth=1)
    if AGGREGATED in series:
        agg = series[AGGREGATED]
        ax.plot([p["t"] - t0 for p in agg], [p["rate"] or 0 for p in agg], label="all", color="black", linewidth=2)
        ax.plot([p["t"] - t0 for p in agg], [p["fail_rate"] or 0 for p in agg], label="failures/s", color="red",
                linewidth=1.5, linestyle="--")
        users = ax.twinx()
        users.plot([p["t"] - t0 for p in agg], [p["users"] or 0 for p in agg], color="grey", linestyle=":",
                   label="users")
        users.set_ylabel("users (dotted)")
    ax.set_xlabel("seconds")
    ax.set_ylabel(f"requests/s (over the last {RATE_WINDOW:g} s)")
    ax.set_title(f"Requests per second by endpoint — {run_dir.name}")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    path = run_dir / "requests_per_second.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    panels = [*names, AGGREGATED] if AGGREGATED in series else names
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.2 * rows), squeeze=False, sharex=True)
    for ax, name in zip(axes.flat, panels, strict=False):  # the grid's last cells may be left empty
        points = series[name]
        xs = [p["t"] - t0 for p in points]
        for key, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
            ax.plot(xs, [p[key] if p[key] is not None else float("nan") for p in points], style, label=key)
        ax.set_title(name if name != AGGREGATED else "all requests", fontsize=9)
        ax.set_ylabel("ms")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"Latency percentiles over a sliding ~10 s window — {run_dir.name}")
    fig.tight_layout()
    path = run_dir / "latency_percentiles.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    cpu_rows = _rows(run_dir / "cpu.csv")
    if cpu_rows:
        by_process: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for row in cpu_rows:
            by_process[row["process"]].append((float(row["timestamp"]) - t0, float(row["cpu_percent"])))
        fig, ax = plt.subplots(figsize=(12, 5))
        for name, points in sorted(by_process.items()):
            ax.plot([p[0] for p in points], [p[1] for p in points], label=name)
        ax.axhline(100, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xlabel("seconds")
        ax.set_ylabel("CPU % of one core")
        ax.set_title(f"CPU by process ({os.cpu_count()} cores) — {run_dir.name}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = run_dir / "cpu_by_process.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def table(summary: dict[str, Any]) -> str:
    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    lines = [f"{'endpoint':<42} {'reqs':>8} {'fails':>6} {'req/s':>8} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>7}"]
    for e in [*summary["endpoints"], {**summary["totals"], "method": "", "name": "all"}]:
        if "requests" not in e:  # no totals: Locust never ran (its errors are printed after the table)
            continue
        lines.append(f"{(e['method'] + ' ' + e['name']).strip()[:42]:<42} {e['requests']:>8} {e['failures']:>6} "
                     f"{e['requests_per_s']:>8.1f} {fmt(e['p50_ms']):>6} {fmt(e['p95_ms']):>6} "
                     f"{fmt(e['p99_ms']):>6} {fmt(e['max_ms']):>7}")
    cpu = summary.get("cpu_percent_of_one_core") or {}
    if cpu:
        lines.append("CPU (% of one core, mean/max): " + ", ".join(
            f"{name} {v['mean']:.0f}/{v['max']:.0f}" for name, v in cpu.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print(__doc__)
        return 2
    run_dir = Path(args[0])
    previous = run_dir / "summary.json"
    meta = json.loads(previous.read_text()) if previous.exists() else {}
    meta = {k: v for k, v in meta.items() if k not in ("machine", "totals", "endpoints", "failures",
                                                        "cpu_percent_of_one_core", "busiest_process", "passed",
                                                        "exceptions")}
    summary = summarise(run_dir, meta)
    plot(run_dir)
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
