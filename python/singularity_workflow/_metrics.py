"""Prometheus metrics without a dependency: counters, gauges, histograms and the text format.

Two users: the dashboard's ``/metrics`` (what the database says, from ``workflow.metrics``) and
a worker's ``--metrics-port`` (what that process did: tasks claimed, completed and failed, the
seconds its handlers took, the sizes of its flush batches, its reconnects). Both write the
Prometheus text exposition format (version 0.0.4), which every Prometheus-compatible scraper
reads; writing it by hand keeps ``prometheus_client`` out of the dependencies, and the format is
small: ``# HELP`` and ``# TYPE`` lines, then one ``name{label="value"} number`` line per sample.
The same families go to OpenTelemetry (``export_families``, with the ``otel`` extra), as
asynchronous instruments read at each collection.

Names follow the Prometheus conventions: the ``singularity_workflow_`` prefix, the unit in the
name (``_seconds``), ``_total`` on counters, base units only.
"""

from __future__ import annotations

import bisect
import errno
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from singularity_workflow._errors import MetricsPortInUse

__all__ = [
    "BATCH_BUCKETS",
    "CONTENT_TYPE",
    "Family",
    "Histogram",
    "MetricsServer",
    "OtelExport",
    "SECONDS_BUCKETS",
    "escape_label",
    "export_families",
    "format_value",
    "render",
    "serve_metrics",
]

#: The Content-Type of the text exposition format.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds buckets of handler durations: 1 ms to 5 min.
SECONDS_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                          30.0, 60.0, 300.0)
#: Task-count buckets of flush batch sizes.
BATCH_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

Labels = tuple[tuple[str, str], ...]


def escape_label(value: str) -> str:
    """Escape a label value as the text format wants: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """Write a sample value: integers without a fraction, NaN and infinities by their names."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _labels(labels: Labels) -> str:
    """Write ``{a="x",b="y"}`` (nothing for no labels)."""
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels) + "}"


@dataclass
class Family:
    """One metric: its name, help text, type and samples (``(suffix, labels, value)``)."""

    name: str
    help: str
    kind: str  # counter, gauge, histogram, untyped
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, labels: Mapping[str, str] | None = None, suffix: str = "") -> None:
        """Add one sample (``suffix``: ``_bucket``, ``_sum``, ``_count`` of a histogram)."""
        self.samples.append((suffix, tuple((labels or {}).items()), float(value)))


def render(families: Iterable[Family]) -> str:
    """Write families in the text exposition format (a family without samples is left out)."""
    lines: list[str] = []
    for f in families:
        if not f.samples:
            continue
        lines.append(f"# HELP {f.name} {f.help}")
        lines.append(f"# TYPE {f.name} {f.kind}")
        for suffix, labels, value in f.samples:
            lines.append(f"{f.name}{suffix}{_labels(labels)} {format_value(value)}")
    return "\n".join(lines) + "\n"


class Histogram:
    """A thread-safe histogram per label set (cumulative buckets, sum and count on render)."""

    def __init__(self, name: str, help: str, buckets: Sequence[float],
                 label_names: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.buckets = tuple(sorted(buckets))
        self.label_names = tuple(label_names)
        self._lock = threading.Lock()
        # per label values: [count per bucket (the last one is +Inf)], sum, count
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *label_values: str) -> None:
        """Count one observation under the given label values (in ``label_names`` order)."""
        i = bisect.bisect_left(self.buckets, value)
        with self._lock:
            series = self._series.get(label_values)
            if series is None:
                series = ([0] * (len(self.buckets) + 1), [0.0, 0.0])
                self._series[label_values] = series
            series[0][i] += 1
            series[1][0] += value
            series[1][1] += 1

    def count(self, *label_values: str) -> int:
        """How many observations were made under these label values."""
        with self._lock:
            series = self._series.get(label_values)
            return 0 if series is None else int(series[1][1])

    def family(self) -> Family:
        """Return the histogram as a Family: ``_bucket`` (cumulative), ``_sum``, ``_count``."""
        f = Family(self.name, self.help, "histogram")
        with self._lock:
            series = {k: (list(v[0]), list(v[1])) for k, v in self._series.items()}
        for values, (counts, (total, count)) in sorted(series.items()):
            base = dict(zip(self.label_names, values, strict=True))
            running = 0
            for bound, n in zip([*self.buckets, math.inf], counts, strict=True):
                running += n
                le = "+Inf" if math.isinf(bound) else format_value(bound)
                f.add(running, {**base, "le": le}, "_bucket")
            f.add(total, base, "_sum")
            f.add(count, base, "_count")
        return f


class MetricsServer:
    """A small HTTP server in a daemon thread answering ``GET /metrics`` with ``render()``."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self.host, self.port = server.server_address[:2]
        self._thread = threading.Thread(target=server.serve_forever, name="sw-metrics",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(port: int, render_text: Callable[[], str], *,
                  host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``render_text()`` at ``http://host:port/metrics`` from a daemon thread.

    The port is bound before this returns, so a port in use fails here, at start, with
    :class:`MetricsPortInUse` naming the port and what to do, not later in a thread. Port 0
    picks a free port (``server.port`` says which).
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server naming
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            try:
                body = render_text().encode()
            except Exception as exc:  # a scrape must not kill the thread; say what failed
                self.send_error(500, f"metrics failed: {type(exc).__name__}")
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Stay quiet: a scraper every 15 s would fill the worker's log."""

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # SO_REUSEADDR lets a restarted worker take its port back from TIME_WAIT sockets, but
        # on Linux it never lets two live servers share a port: that still fails with EADDRINUSE.
        allow_reuse_address = True

    try:
        server = Server((host, port), Handler)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise MetricsPortInUse(port, host, exc) from exc
        raise
    return MetricsServer(server)



# --- OpenTelemetry ---------------------------------------------------------------------------

#: How long one read of the families serves the instruments' callbacks: a collection calls every
#: instrument's callback in turn, and they should all see the same reading.
_OTEL_READING_SECONDS: Final = 0.5


class OtelExport:
    """The OpenTelemetry instruments mirroring one source of families (see ``export_families``).

    ``instruments`` maps each OpenTelemetry instrument name to the kind it was made as
    (``counter`` or ``gauge``). The instruments read the source at each collection.
    """

    def __init__(self, source: Callable[[], Iterable[Family]]) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._reading: dict[str, list[tuple[Labels, float]]] = {}
        self.instruments: dict[str, str] = {}

    def samples(self, name: str) -> list[tuple[Labels, float]]:
        """Return the samples of instrument ``name`` from a reading at most 0.5 s old."""
        import time

        with self._lock:
            now = time.monotonic()
            if now - self._read_at > _OTEL_READING_SECONDS:
                reading: dict[str, list[tuple[Labels, float]]] = {}
                for fam in self._source():
                    for suffix, labels, value in fam.samples:
                        reading.setdefault(_otel_name(fam, suffix), []).append((labels, value))
                self._reading, self._read_at = reading, now
            return list(self._reading.get(name, ()))


def _otel_name(fam: Family, suffix: str) -> str:
    """Name a family's samples in OpenTelemetry.

    A counter goes without ``_total`` (exporters to Prometheus add it back); a histogram's
    parts are ``_bucket``/``_sum``/``_count``.
    """
    if fam.kind == "counter" and fam.name.endswith("_total"):
        return fam.name[: -len("_total")]
    return fam.name + suffix


def export_families(source: Callable[[], Iterable[Family]], *, meter_provider: object = None,
                    meter_name: str = "singularity_workflow") -> OtelExport:
    """Mirror the families ``source()`` returns as OpenTelemetry asynchronous instruments.

    ``source`` is what a ``/metrics`` page renders: ``Worker.metric_families`` (the worker's own
    counters and histograms) or ``dashboard.metrics_families(client)`` (what the database
    says). Each family becomes an observable instrument of the meter ``meter_name`` of
    ``meter_provider`` (default: the global one), read at each collection, so whatever reader
    or exporter the application set up (OTLP, Prometheus, in-memory) gets the same numbers as a
    scrape. Counters become observable counters named without ``_total``; gauges, observable
    gauges; a histogram, whose buckets OpenTelemetry cannot take from a callback, becomes
    three observable counters (``<name>_bucket`` with an ``le`` attribute, ``_sum``,
    ``_count``), the Prometheus form. The families are found by one ``source()`` call now: a
    family that appears only later is not exported.

    Needs the ``otel`` extra (``pip install 'singularity-workflow[otel]'``); without it, raises
    ``ImportError`` saying so.
    """
    try:
        from opentelemetry import metrics as otel_metrics
    except ImportError as exc:
        raise ImportError(
            "export_families needs OpenTelemetry: pip install 'singularity-workflow[otel]'"
        ) from exc
    provider: Any = meter_provider if meter_provider is not None else (
        otel_metrics.get_meter_provider())
    meter = provider.get_meter(meter_name)
    export = OtelExport(source)
    for fam in list(source()):
        parts = ("_bucket", "_sum", "_count") if fam.kind == "histogram" else ("",)
        for suffix in parts:
            name = _otel_name(fam, suffix)
            if name in export.instruments:
                continue
            callback = _callback(export, name, otel_metrics.Observation)
            if fam.kind in ("counter", "histogram"):
                meter.create_observable_counter(name, callbacks=[callback], description=fam.help)
                export.instruments[name] = "counter"
            else:
                meter.create_observable_gauge(name, callbacks=[callback], description=fam.help)
                export.instruments[name] = "gauge"
    return export


def _callback(export: OtelExport, name: str, observation: Any) -> Callable[[Any], list[Any]]:
    """Return the instrument callback of ``name``: its samples as Observations."""

    def observe(_options: Any) -> list[Any]:
        return [observation(value, dict(labels)) for labels, value in export.samples(name)]

    return observe
