"""The dashboard's ASGI application: pages, live streams and control actions.

Pages are rendered on the server with Jinja2 (autoescaping on: every value a run, step, task
or message carries is shown as text, never as markup), and a small script without a build step
(``static/dashboard.js``) keeps them current from Server-Sent Events. Everything is read through
the :class:`~singularity_workflow.Client`; the control actions call the same SQL functions as
the CLI (``cancel_workflow_run`` ...), so the dashboard can do nothing the command line cannot.

Safety, in :class:`_Guard` and the action handlers:

* a token, when configured, is required on every request (``Authorization: Bearer``, the
  ``sw_token`` cookie, or ``?token=`` once, which sets the cookie and redirects without it);
* actions are POSTs that must carry the server's CSRF token (embedded in its own pages, which
  another origin cannot read) and, when the browser sends an ``Origin``, a same-origin one;
* read-only mode refuses every action and runs the pool's sessions read-only;
* the ``Host`` header must be a loopback name when the server is bound to loopback, which stops
  DNS-rebinding pages from reading the dashboard;
* responses carry a Content-Security-Policy without inline scripts, and frame denial.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from singularity_workflow._client import Client
from singularity_workflow._errors import (
    FlowNotFound,
    InvalidState,
    RunNotFound,
    SchemaNotInstalled,
    VersionNotFound,
    WorkflowError,
)
from singularity_workflow._names import CHANNEL_NAME, RESERVED_CHANNEL_PREFIXES
from singularity_workflow._types import DEFAULT_CANCEL_REASON, RunStatus, WorkflowRun
from singularity_workflow.dashboard import _queries as queries
from singularity_workflow.dashboard._dag import Layout, display_state, layout_flow
from singularity_workflow.dashboard._live import RUNS_TOPIC, LiveHub, run_topic
from singularity_workflow.dashboard._observe import observe_routes

__all__ = ["DashboardConfig", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Run states the runs list filters by (the keys of the client's dashboard filters).
STATES: Final = ("running", "paused", "completed", "failed", "cancelled")
PAGE_SIZES: Final = (25, 50, 100, 200)
#: Counts stop here ("10000+"), so they stay cheap on a table of millions of runs.
COUNT_CAP: Final = 10_000
#: Longest JSON text a viewer shows inline; the rest is cut (the step page shows one value).
VIEW_LIMIT: Final = 200_000
#: Seconds between snapshots of a running run with no events (map task counts, steps
#: starting: the engine emits events for steps ending, not for each task).
RUN_POLL: Final = 1.0
#: Seconds between keep-alive comments on an idle stream.
KEEPALIVE: Final = 15.0
#: The runs list's streams wake at most this often (a page of runs is heavier than a run).
LIST_INTERVAL: Final = 1.0
#: The word the run page shows after an action ("paused" ...), by action.
_DONE: Final = {"pause": "paused", "resume": "resumed", "cancel": "cancelled",
                "approve": "approved", "reject": "rejected"}
#: Largest action form body read (a cancel reason is cut at 1,000 characters anyway).
MAX_FORM: Final = 16_384
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
#: Shown beside a step whose tasks no live registered worker can take (get_run_status).
WAITING_FOR_WORKER: Final = "waiting for a worker that can run this step"
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    """How the dashboard guards itself; see the module docstring.

    ``allowed_hosts`` None accepts any Host header (a server bound to a non-loopback address,
    which then needs the token or read-only mode); ``coalesce`` is the live feed's interval.
    """

    token: str | None = None
    read_only: bool = False
    allowed_hosts: frozenset[str] | None = LOOPBACK_HOSTS
    coalesce: float = 0.25


def _templates() -> Jinja2Templates:
    """Load the package's templates, with autoescaping (Starlette enables it for .html)."""
    directory = resources.files("singularity_workflow.dashboard") / "templates"
    templates = Jinja2Templates(directory=str(directory))
    templates.env.autoescape = True
    templates.env.filters["when"] = _when
    templates.env.filters["duration"] = _duration
    templates.env.filters["pretty"] = _pretty
    templates.env.filters["short"] = _short
    return templates


def _when(value: datetime | None) -> str:
    """Format a timestamp for a cell: UTC, seconds precision; '' for None."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    """Format a duration (0.42 s, 12.3 s, 4 min 05 s, 2 h 03 min); '' for None."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _pretty(value: Any) -> str:
    """Indented JSON for a viewer, cut at VIEW_LIMIT characters (the template escapes it)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > VIEW_LIMIT:
        return text[:VIEW_LIMIT] + f"\n... ({len(text) - VIEW_LIMIT} more characters)"
    return text


def _short(text: str | None, width: int = 80) -> str:
    """First line of ``text`` cut to ``width`` characters, for a table cell."""
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "\u2026"


def _seconds(start: datetime | None, end: datetime | None, now: datetime) -> float | None:
    """Seconds from ``start`` to ``end`` (or to ``now`` while running)."""
    if start is None:
        return None
    return max(0.0, ((end or now) - start).total_seconds())


def _cursor(text: str | None) -> tuple[datetime, UUID] | None:
    """Parse a paging cursor ``<started_at ISO>~<run id>``; None when absent or malformed."""
    if not text or "~" not in text:
        return None
    when, _, rid = text.rpartition("~")
    try:
        return datetime.fromisoformat(when), UUID(rid)
    except ValueError:
        return None


def _cursor_of(run: WorkflowRun) -> str:
    """Return the paging cursor of a run."""
    return f"{run.started_at.isoformat()}~{run.run_id}"


class _Guard:
    """ASGI middleware: Host check, token, and security headers on every response."""

    def __init__(self, app: ASGIApp, config: DashboardConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        allowed = self.config.allowed_hosts
        host = headers.get("host", "")
        hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        if allowed is not None and hostname not in allowed:
            await PlainTextResponse("host not allowed", status_code=421)(scope, receive, send)
            return
        token = self.config.token
        if token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = _bearer(headers.get("authorization")) or _cookie(headers.get("cookie"))
            if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                offered = query.get("token")
                if offered is not None and hmac.compare_digest(offered.encode(), token.encode()):
                    # Trade the URL token for a cookie, so it leaves the address bar and logs.
                    query.pop("token")
                    target = scope["path"] + ("?" + urlencode(query) if query else "")
                    response: Response = RedirectResponse(target, status_code=303)
                    response.set_cookie("sw_token", token, httponly=True, samesite="strict")
                else:
                    response = PlainTextResponse(
                        "this dashboard needs its token: open it as /?token=TOKEN, or send"
                        " 'Authorization: Bearer TOKEN'", status_code=401,
                    )
                await _with_headers(response)(scope, receive, send)
                return
        await self.app(scope, receive, _secure_send(send))


def _bearer(value: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer`` header."""
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


def _cookie(value: str | None) -> str | None:
    """Return the ``sw_token`` cookie's value."""
    for part in (value or "").split(";"):
        name, _, val = part.strip().partition("=")
        if name == "sw_token":
            return val
    return None


def _with_headers(response: Response) -> Response:
    """Add the security headers to one response."""
    response.headers.update(_SECURITY_HEADERS)
    return response


_SECURITY_HEADERS: Final = {
    "content-security-policy": _CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # Not "no-referrer": with it, browsers send "Origin: null" on the action forms' POSTs,
    # which the same-origin check must refuse.
    "referrer-policy": "same-origin",
}


def _secure_send(send: Send) -> Send:
    """Wrap ``send`` so that every response start carries the security headers."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers += [(k.encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]
            message["headers"] = headers
        await send(message)

    return wrapped


class Dashboard:
    """The application's state and handlers: the client, the live hub, templates, caches."""

    def __init__(self, client: Client, config: DashboardConfig, *, pool: ConnectionPool[Any] | None
                 = None) -> None:
        self.client = client
        self.config = config
        self.pool = pool
        self.hub = LiveHub(client, coalesce=config.coalesce)
        self.templates = _templates()
        #: Embedded in this server's pages; another origin cannot read them, so cannot forge it.
        self.csrf = secrets.token_urlsafe(32)
        self._layouts: dict[tuple[str, int | None], Layout] = {}

    # -- helpers -------------------------------------------------------------------------------

    def render(self, request: Request, name: str, context: dict[str, Any],
               status_code: int = 200) -> Response:
        """Render a template with the values every page uses."""
        base = {"read_only": self.config.read_only, "csrf": self.csrf, "states": STATES}
        return self.templates.TemplateResponse(request, name, {**base, **context},
                                               status_code=status_code)

    def error(self, request: Request, status_code: int, message: str,
              back: str | None = None) -> Response:
        """Render an error page (the message is escaped like everything else)."""
        return self.render(request, "error.html", {"message": message, "back": back},
                           status_code=status_code)

    def layout(self, flow_slug: str, version: int | None = None) -> Layout:
        """Return the DAG layout of a flow version (cached: a version's shape never changes)."""
        found = self._layouts.get((flow_slug, version))
        if found is None:
            flow = self.client.get_flow(flow_slug, version)
            found = layout_flow(flow["steps"])
            if version is not None:  # "the current version" changes with the next deploy
                self._layouts[(flow_slug, version)] = found
        return found

    def snapshot(self, status: RunStatus) -> dict[str, Any]:
        """Build the JSON the run page's script applies: run state, steps, allowed actions."""
        now = datetime.now(UTC)
        steps = []
        for s in status.steps:
            ended = s.completed_at or s.failed_at
            steps.append({
                "step": s.step,
                "state": display_state(s.status, status.state),
                "type": s.type,
                "tasks": "" if s.tasks is None else f"{s.tasks_completed or 0}/{s.tasks}",
                "attempts": "" if s.attempts is None else str(s.attempts),
                "started": _when(s.started_at),
                "ended": _when(ended),
                "duration": _duration(_seconds(s.started_at, ended, now)),
                "error": s.error or "",
                # The run page shows it beside the state; empty while a worker can take it.
                "waiting": WAITING_FOR_WORKER if s.waiting_for_worker else "",
                # A wait step that waits: its event, for the approve / reject buttons.
                "event": (s.waiting_for_event or {}).get("event", ""),
            })
        return {
            "run_id": str(status.run_id),
            "state": status.state,
            "progress": f"{status.completed_steps}/{status.total_steps} steps"
                        f" ({status.percentage:g}%)",
            "percentage": status.percentage,
            "ended": _when(status.finished_at),
            "duration": _duration(_seconds(status.started_at, status.finished_at, now)),
            "error": status.error or "",
            "output": "" if status.output is None else _pretty(status.output),
            "steps": steps,
            "actions": self.actions(status),
        }

    def actions(self, status: RunStatus) -> dict[str, bool]:
        """Which controls apply to a run in its current state (none in read-only mode)."""
        if self.config.read_only:
            return {"pause": False, "resume": False, "cancel": False, "retry": False}
        alive = not status.finished
        return {
            "pause": alive and not status.paused,
            "resume": alive and status.paused,
            "cancel": alive,
            "retry": status.state in ("failed", "cancelled"),
        }

    # -- runs list ---------------------------------------------------------------------------------

    def _runs_context(self, request: Request) -> dict[str, Any]:
        """Read the runs list's filters and page from the query string, and the runs."""
        q = request.query_params
        state = q.get("state") or None
        if state not in STATES:
            state = None
        flow = q.get("flow") or None
        try:
            limit = int(q.get("limit", "50"))
        except ValueError:
            limit = 50
        limit = limit if limit in PAGE_SIZES else 50
        before, after = _cursor(q.get("before")), _cursor(q.get("after"))
        # One extra row tells whether a further page exists in the direction of travel.
        runs = queries.runs(self.client, state, flow, limit=limit + 1, before=before, after=after)
        if after is not None and before is None:
            has_newer = len(runs) > limit
            runs = runs[-limit:] if has_newer else runs
            has_older = True
            if not has_newer and len(runs) < limit:
                # Fewer than a page newer than the cursor: show the newest page instead.
                runs = queries.runs(self.client, state, flow, limit=limit + 1)
                has_older = len(runs) > limit
                runs = runs[:limit]
        else:
            has_older = len(runs) > limit
            runs = runs[:limit]
            has_newer = before is not None
        counts = queries.run_counts(self.client, flow, cap=COUNT_CAP)
        filters = {"state": state or "", "flow": flow or "", "limit": str(limit)}

        def link(**extra: str) -> str:
            params = {k: v for k, v in {**filters, **extra}.items() if v and
                      not (k == "limit" and v == "50")}
            return "/runs" + ("?" + urlencode(params) if params else "")

        return {
            "runs": runs, "state": state, "flow": flow, "limit": limit, "counts": counts,
            "count_cap": COUNT_CAP, "page_sizes": PAGE_SIZES,
            "flows": [f["slug"] for f in self.client.list_flows()],
            "first_page": before is None and after is None,
            "older": link(before=_cursor_of(runs[-1])) if has_older and runs else None,
            "newer": link(after=_cursor_of(runs[0])) if has_newer and runs else None,
            "newest": link(), "link": link, "query": str(request.url.query),
        }

    async def runs_page(self, request: Request) -> Response:
        """GET /runs: the runs list with filters, counts and keyset paging."""
        ctx = await asyncio.to_thread(self._runs_context, request)
        return self.render(request, "runs.html", ctx)

    async def runs_fragment(self, request: Request) -> Response:
        """GET /runs/live: the list's live part (counts, table, pager), for the auto-update."""
        ctx = await asyncio.to_thread(self._runs_context, request)
        return self.render(request, "_runs_live.html", ctx)

    # -- one run -----------------------------------------------------------------------------------

    def _run_context(self, run_id: UUID) -> dict[str, Any]:
        """Read the run page's values: status, snapshot, DAG layout, input and output."""
        status = self.client.get_run_status(run_id)
        snap = self.snapshot(status)
        return {
            "run": status, "snap": snap, "layout": self.layout(status.flow_slug, status.version),
            "states_by_step": {s["step"]: s for s in snap["steps"]},
        }

    async def run_page(self, request: Request) -> Response:
        """GET /runs/{run_id}: the DAG, steps, timings, viewers and actions of one run."""
        run_id = _parse_uuid(request.path_params["run_id"])
        if run_id is None:
            return self.error(request, 404, "not a run id", "/runs")
        try:
            ctx = await asyncio.to_thread(self._run_context, run_id)
        except RunNotFound as exc:
            return self.error(request, 404, str(exc), "/runs")
        ctx["done"] = request.query_params.get("done", "")
        return self.render(request, "run.html", ctx)

    async def run_json(self, request: Request) -> Response:
        """GET /runs/{run_id}/status.json: the snapshot the page's script applies."""
        run_id = _parse_uuid(request.path_params["run_id"])
        if run_id is None:
            return JSONResponse({"error": "not a run id"}, status_code=404)
        try:
            status = await asyncio.to_thread(self.client.get_run_status, run_id)
        except RunNotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse(self.snapshot(status))

    async def step_page(self, request: Request) -> Response:
        """GET /runs/{run_id}/steps/{step}: a step's output, error and tasks (paged)."""
        run_id = _parse_uuid(request.path_params["run_id"])
        slug = request.path_params["step"]
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError:
            offset = 0
        limit = 100
        if run_id is None:
            return self.error(request, 404, "not a run id", "/runs")
        step = await asyncio.to_thread(
            queries.step, self.client, run_id, slug, limit=limit + 1, offset=offset
        )
        if step is None:
            return self.error(request, 404, f"run {run_id} has no step {slug}", "/runs")
        status = await asyncio.to_thread(self.client.get_run_status, run_id)
        tasks = step["tasks"]
        now = datetime.now(UTC)
        for t in tasks:
            t["duration"] = _duration(_seconds(t["started_at"],
                                               t["completed_at"] or t["failed_at"], now))
        return self.render(request, "step.html", {
            "run": status, "step": step, "tasks": tasks[:limit], "offset": offset,
            "limit": limit, "more": len(tasks) > limit,
            "state": display_state(step["status"], status.state),
        })

    # -- actions -----------------------------------------------------------------------------------

    async def action(self, request: Request) -> Response:
        """POST /runs/{run_id}/{action}: pause, resume, cancel, retry, approve or reject.

        After CSRF checks. approve / reject answer the wait step named by the form's ``step``
        (its buttons show on a run with a waiting wait step), with the form's ``comment``.
        """
        if self.config.read_only:
            return self.error(request, 403, "this dashboard is read-only")
        form = await _form(request)
        given = str(form.get("csrf", ""))
        if not hmac.compare_digest(given.encode(), self.csrf.encode()):
            return self.error(request, 403, "missing or stale form token: reload the page")
        if not _same_origin(request):
            return self.error(request, 403, "cross-origin request refused")
        run_id = _parse_uuid(request.path_params["run_id"])
        name = request.path_params["action"]
        if run_id is None:
            return self.error(request, 404, "not a run id", "/runs")
        back = f"/runs/{run_id}"
        client = self.client
        try:
            if name == "pause":
                await asyncio.to_thread(client.pause_workflow_run, run_id)
            elif name == "resume":
                await asyncio.to_thread(client.resume_workflow_run, run_id)
            elif name == "cancel":
                reason = str(form.get("reason", "")).strip()[:1000] or DEFAULT_CANCEL_REASON
                await asyncio.to_thread(client.cancel_workflow_run, run_id, reason)
            elif name in ("approve", "reject"):
                step = str(form.get("step", ""))
                comment = str(form.get("comment", "")).strip()[:1000] or None
                answer = client.approve if name == "approve" else client.reject
                await asyncio.to_thread(answer, run_id, step, "dashboard", comment)
            elif name == "retry":
                reset_all = form.get("mode") == "reset_all"
                new = await asyncio.to_thread(
                    lambda: client.retry_failed_workflow(
                        run_id, skip_completed=not reset_all, reset_all=reset_all
                    )
                )
                return RedirectResponse(f"/runs/{new}?done=retried", status_code=303)
            else:
                return self.error(request, 404, f"unknown action {name}", back)
        except RunNotFound as exc:
            return self.error(request, 404, str(exc), "/runs")
        except InvalidState as exc:
            return self.error(request, 409, str(exc), back)
        except WorkflowError as exc:
            return self.error(request, 400, exc.describe(), back)
        return RedirectResponse(f"{back}?done={_DONE[name]}", status_code=303)

    # -- queues and channels -----------------------------------------------------------------------

    def _queues_context(self) -> dict[str, Any]:
        return {"queues": queries.queues(self.client),
                "workers": queries.workers(self.client),
                "limits": self.client.list_limits(),
                "now": _when(datetime.now(UTC))}

    # -- a flow's versions ------------------------------------------------------------------------

    def _versions_context(self, flow_slug: str, a: int | None, b: int | None) -> dict[str, Any]:
        """Read a flow's version history and, for versions ``a`` and ``b``, their step diff."""
        versions = self.client.list_flow_versions(flow_slug)
        if len(versions) > 1 and (a is None or b is None):
            a, b = versions[1].version, versions[0].version  # the last deploy's change
        diff: list[dict[str, Any]] = []
        if a is not None and b is not None:
            old = {s["slug"]: s for s in self.client.get_flow(flow_slug, a)["steps"]}
            new = {s["slug"]: s for s in self.client.get_flow(flow_slug, b)["steps"]}
            for slug in sorted(old.keys() | new.keys()):
                before, after = old.get(slug), new.get(slug)
                if before == after:
                    continue
                changed = sorted(
                    k for k in (before or {}).keys() | (after or {}).keys()
                    if (before or {}).get(k) != (after or {}).get(k)
                ) if before and after else []
                diff.append({
                    "step": slug,
                    "change": "added" if before is None else "removed" if after is None
                    else "changed",
                    "fields": [{"name": k, "old": before.get(k) if before else None,
                                "new": after.get(k) if after else None} for k in changed],
                })
        return {"flow": flow_slug, "versions": versions, "a": a, "b": b, "diff": diff}

    async def versions_page(self, request: Request) -> Response:
        """GET /flows/{flow}/versions: the version history, and ``?a=&b=`` the diff of two."""
        flow_slug = request.path_params["flow"]

        def number(name: str) -> int | None:
            raw = request.query_params.get(name, "")
            return int(raw) if raw.isdigit() else None

        try:
            ctx = await asyncio.to_thread(
                self._versions_context, flow_slug, number("a"), number("b"))
        except (FlowNotFound, VersionNotFound) as exc:
            return self.error(request, 404, str(exc), "/runs")
        return self.render(request, "versions.html", ctx)

    async def queues_page(self, request: Request) -> Response:
        """GET /queues: depth, invisible and oldest age per queue; limits; the live workers."""
        ctx = await asyncio.to_thread(self._queues_context)
        return self.render(request, "queues.html", ctx)

    async def queues_fragment(self, request: Request) -> Response:
        """GET /queues/live: the queues page's tables, refreshed by the page's script."""
        ctx = await asyncio.to_thread(self._queues_context)
        return self.render(request, "_queues_live.html", ctx)

    async def channels_page(self, request: Request) -> Response:
        """GET /channels: the channels ever used (``?name=`` opens that channel's page)."""
        wanted = request.query_params.get("name", "").strip()
        if wanted:
            if _is_channel(wanted):
                return RedirectResponse(f"/channels/{wanted}", status_code=303)
            return self.error(request, 404, "not a channel name", "/channels")
        channels = await asyncio.to_thread(queries.channels, self.client)
        return self.render(request, "channels.html", {"channels": channels})

    async def schedules_page(self, request: Request) -> Response:
        """GET /schedules: every schedule with its next fire and its last run."""
        schedules = await asyncio.to_thread(self.client.list_schedules)
        return self.render(request, "schedules.html", {"schedules": schedules})

    async def channel_page(self, request: Request) -> Response:
        """GET /channels/{name}: the channel's recent messages, then new ones live."""
        name = request.path_params["name"]
        if not _is_channel(name):
            return self.error(request, 404, "not a channel name", "/channels")
        messages = await asyncio.to_thread(self._recent_messages, name, 100)
        last = messages[-1]["id"] if messages else await asyncio.to_thread(
            self.client.last_message_id, name)
        return self.render(request, "channel.html",
                           {"channel": name, "messages": messages, "last_id": last})

    def _recent_messages(self, channel: str, count: int) -> list[dict[str, Any]]:
        """Return the last ``count`` messages of a channel, oldest first."""
        last = self.client.last_message_id(channel)
        return self._messages_after(channel, max(0, last - count), count)

    def _messages_after(self, channel: str, after: int, limit: int = 100) -> list[dict[str, Any]]:
        """Messages with ids above ``after`` (read_channel), as the page shows them."""
        return [
            {"id": m.message_id, "at": _when(m.enqueued_at), "acked": m.acknowledged,
             "text": _pretty(m.message)}
            for m in self.client.read_channel(channel, after_id=after, limit=limit)
        ]

    # -- live streams ------------------------------------------------------------------------------

    async def stream_run(self, request: Request) -> Response:
        """GET /live/runs/{run_id}: SSE of the run's snapshot, sent when it changes."""
        run_id = _parse_uuid(request.path_params["run_id"])
        if run_id is None:
            return PlainTextResponse("not a run id", status_code=404)

        async def events() -> AsyncIterator[str]:
            with self.hub.subscribe(run_topic(run_id)) as sub:
                last = ""
                while True:
                    sub.wake.clear()
                    try:
                        status = await asyncio.to_thread(self.client.get_run_status, run_id)
                    except RunNotFound:
                        yield "event: gone\ndata: {}\n\n"
                        return
                    except (psycopg.Error, WorkflowError):
                        status = None  # the database is away for a moment: try again later
                    if status is not None:
                        payload = json.dumps(self.snapshot(status))
                        # Durations of running steps change every second; that alone is not
                        # worth a message unless the run is live (the page shows them moving).
                        if payload != last:
                            yield f"event: status\ndata: {payload}\n\n"
                            last = payload
                    live = status is None or not status.finished
                    if not await _wait(sub.wake, RUN_POLL if live else KEEPALIVE):
                        if not live:
                            yield ": keep-alive\n\n"
                    # At most one update per interval, however many events arrived.
                    await asyncio.sleep(self.hub.coalesce)

        return _sse(events())

    async def stream_runs(self, request: Request) -> Response:
        """GET /live/runs: SSE ``changed`` when any run changed (at most once a second)."""

        async def events() -> AsyncIterator[str]:
            with self.hub.subscribe(RUNS_TOPIC) as sub:
                yield "event: hello\ndata: {}\n\n"
                while True:
                    if await _wait(sub.wake, KEEPALIVE):
                        sub.wake.clear()
                        yield "event: changed\ndata: {}\n\n"
                        await asyncio.sleep(LIST_INTERVAL)
                    else:
                        yield ": keep-alive\n\n"

        return _sse(events())

    async def stream_channel(self, request: Request) -> Response:
        """GET /live/channels/{name}?after=ID: SSE of the channel's new messages."""
        name = request.path_params["name"]
        if not _is_channel(name):
            return PlainTextResponse("not a channel name", status_code=404)
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            after = 0

        async def events() -> AsyncIterator[str]:
            nonlocal after
            with self.hub.subscribe(("channel", name)) as sub:
                while True:
                    sub.wake.clear()
                    messages = await asyncio.to_thread(self._messages_after, name, after)
                    if messages:
                        after = messages[-1]["id"]
                        yield f"event: messages\ndata: {json.dumps(messages)}\n\n"
                        if len(messages) == 100:
                            continue
                    if not await _wait(sub.wake, KEEPALIVE):
                        yield ": keep-alive\n\n"
                    await asyncio.sleep(self.hub.coalesce)

        return _sse(events())

    async def healthz(self, request: Request) -> Response:
        """GET /healthz: 200 when the database answers (for probes)."""
        await asyncio.to_thread(self.client.last_event_id)
        return PlainTextResponse("ok")


async def _form(request: Request) -> dict[str, str]:
    """Parse an urlencoded form body (the action forms); empty for anything else or oversize.

    Done here rather than with ``request.form()``, which needs python-multipart for a format
    these forms never use.
    """
    if not request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return {}
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` up to ``timeout`` seconds; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


def _sse(events: AsyncIterator[str]) -> Response:
    """Wrap ``events`` as a Server-Sent Events response (not cached, not buffered by proxies)."""
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


def _is_channel(name: str) -> bool:
    """Tell whether ``name`` is a messaging channel name (reserved prefixes refused)."""
    return bool(CHANNEL_NAME.fullmatch(name)) and not name.startswith(RESERVED_CHANNEL_PREFIXES)


def _parse_uuid(text: str) -> UUID | None:
    """Parse a run id from a path; None if it is not one."""
    try:
        return UUID(text)
    except ValueError:
        return None


def _same_origin(request: Request) -> bool:
    """Tell whether a request may act: false when the browser names another origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def _read_only_session(conn: psycopg.Connection[Any]) -> None:
    """Pool ``configure`` hook: make every transaction of the session read-only."""
    conn.execute("set session characteristics as transaction read only")


def create_app(database: str | Client | None = None,
               config: DashboardConfig | None = None) -> Starlette:
    """Build the dashboard application over ``database`` (a connection string or a Client).

    A connection string (or None: DATABASE_URL) gets a small pool of its own, opened and
    closed with the application; a Client is used as given. The live hub (one LISTEN
    connection) starts and stops with the application too.
    """
    config = config or DashboardConfig()
    pool: ConnectionPool[Any] | None = None
    if isinstance(database, Client):
        client = database
    else:
        conninfo = database if database is not None else Client().conninfo
        if conninfo is None:
            raise WorkflowError("no database given: pass --database-url or set DATABASE_URL")
        pool = ConnectionPool(
            conninfo, min_size=1, max_size=4, open=False, kwargs={"autocommit": True},
            configure=_read_only_session if config.read_only else None,
            name="sw-dashboard",
        )
        client = Client(pool)
    dash = Dashboard(client, config, pool=pool)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if pool is not None:
            await asyncio.to_thread(pool.open, True, 10.0)
        await dash.hub.start()
        try:
            yield
        finally:
            await dash.hub.stop()
            if pool is not None:
                await asyncio.to_thread(pool.close)

    static = resources.files("singularity_workflow.dashboard") / "static"
    routes = [
        Route("/", lambda request: RedirectResponse("/runs", status_code=307)),
        Route("/runs", dash.runs_page),
        Route("/runs/live", dash.runs_fragment),
        Route("/runs/{run_id}", dash.run_page),
        Route("/runs/{run_id}/status.json", dash.run_json),
        Route("/runs/{run_id}/steps/{step}", dash.step_page),
        Route("/runs/{run_id}/{action}", dash.action, methods=["POST"]),
        Route("/flows/{flow}/versions", dash.versions_page),
        Route("/queues", dash.queues_page),
        Route("/queues/live", dash.queues_fragment),
        Route("/channels", dash.channels_page),
        Route("/schedules", dash.schedules_page),
        Route("/channels/{name}", dash.channel_page),
        Route("/live/runs", dash.stream_runs),
        Route("/live/runs/{run_id}", dash.stream_run),
        Route("/live/channels/{name}", dash.stream_channel),
        Route("/healthz", dash.healthz),
        *observe_routes(client, dash.render),  # /metrics, /charts, timelines (_observe.py)
        Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
    ]
    async def schema_missing(request: Request, exc: Exception) -> Response:
        # A database without the schema: say how to install it rather than a bare 500.
        return dash.error(request, 503, exc.describe() if isinstance(exc, WorkflowError)
                          else str(exc))

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={SchemaNotInstalled: schema_missing})
    app.state.dashboard = dash
    app.add_middleware(_Guard, config=config)
    return app
