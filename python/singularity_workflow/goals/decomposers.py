"""Decomposers: what turns a goal into tasks for :class:`~singularity_workflow.Orchestrator`.

The protocol (:class:`Decomposer`) is one callable: ``decomposer(goal: str)`` returns (or, for
an ``async def``, resolves to) a list of task dicts::

    [{"id": "analyze", "description": "Analyze requirements", "depends_on": []},
     {"id": "build", "description": "Build it", "depends_on": ["analyze"],
      "subtasks": [{"id": "build_api"}, {"id": "build_ui", "depends_on": ["build_api"]}]},
     {"id": "document", "description": "Write the docs", "complex": true}]

* ``id``: unique in the whole graph, a step name (``^[A-Za-z_][A-Za-z0-9_]{0,62}$``, not
  ``run``); ``description``: free text (what a fallback handler or an LLM agent acts on);
  ``depends_on``: ids of other tasks (depending on a task with subtasks means depending on all
  of them); ``subtasks``: tasks nested under this one; ``complex: true``: ask the decomposer
  again with this task's description (up to ``max_depth``). Any other key is kept on the task.
* ``{"tasks": [...]}`` and the Elixir library's ``("ok", [...])`` / ``("error", reason)`` are
  accepted too.
* Raise an exception to report failure; the orchestrator wraps it with the goal it was for.

Here: :class:`RuleBasedDecomposer` (regular expressions to task templates) with an example rule
set (``rule_based_decomposer``); :class:`OpenAIChatDecomposer`, which asks any
OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp ...) for the task
list using only the standard library; and :class:`FakeChatServer`, such an endpoint on
127.0.0.1 for tests and demos.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol, runtime_checkable

from singularity_workflow.goals._graph import DecompositionError, DecompositionTimeout

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "Decomposer",
    "FakeChatServer",
    "OpenAIChatDecomposer",
    "RuleBasedDecomposer",
    "parse_task_json",
    "rule_based_decomposer",
]

TaskList = list[dict[str, Any]]


@runtime_checkable
class Decomposer(Protocol):
    """A goal decomposer: ``goal`` -> list of task dicts (see the module docstring).

    May be a plain function, an object with ``__call__``, or ``async def``. It is called once
    for the goal and once per task marked ``complex``, with that task's description, within the
    orchestrator's timeout.
    """

    def __call__(self, goal: str, /) -> Sequence[Mapping[str, Any]] | Awaitable[Any]:
        """Return the tasks for ``goal`` (or an awaitable of them)."""
        ...


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


class RuleBasedDecomposer:
    """Decompose by rules: the first regular expression found in the goal picks a task template.

    ``rules``: ``(pattern, tasks)`` pairs, tried in order (case-insensitive ``re.search``).
    ``default``: the template when no rule matches (None: raise ValueError). ``{goal}`` in a
    description is replaced by the goal. Templates are copied, never handed out.
    """

    def __init__(
        self,
        rules: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
        *,
        default: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.rules = [(re.compile(p, re.IGNORECASE), list(tasks)) for p, tasks in rules]
        self.default = None if default is None else list(default)

    def __call__(self, goal: str) -> TaskList:
        """Return the tasks of the first matching rule (or the default) for ``goal``."""
        for pattern, tasks in self.rules:
            if pattern.search(goal):
                return self._fill(tasks, goal)
        if self.default is None:
            raise ValueError(f"no rule matches the goal {goal!r}")
        return self._fill(self.default, goal)

    @staticmethod
    def _fill(tasks: Sequence[Mapping[str, Any]], goal: str) -> TaskList:
        """Deep-copy a template, putting the goal into descriptions."""
        filled: TaskList = copy.deepcopy([dict(t) for t in tasks])

        def fill(nodes: TaskList) -> None:
            for t in nodes:
                if isinstance(t.get("description"), str):
                    t["description"] = t["description"].replace("{goal}", goal)
                fill(t.get("subtasks") or [])

        fill(filled)
        return filled


#: The example rules: software-ish goals. Specific patterns come first (first match wins); the
#: "complex" implement task is decomposed again by the first rule when max_depth allows.
SOFTWARE_RULES: Final[list[tuple[str, list[dict[str, Any]]]]] = [
    (
        r"^implement the parts of",
        [
            {"id": "backend", "description": "Write the server side"},
            {"id": "frontend", "description": "Write the client side"},
            {"id": "integrate", "description": "Wire both sides together",
             "depends_on": ["backend", "frontend"]},
        ],
    ),
    (
        r"\b(deploy|release|ship)\b",
        [
            {"id": "check", "description": "Run the test suite for: {goal}"},
            {"id": "package", "description": "Build the release artefacts"},
            {"id": "stage", "description": "Deploy to staging", "depends_on": ["check", "package"]},
            {"id": "verify", "description": "Smoke-test staging", "depends_on": ["stage"]},
            {"id": "production", "description": "Deploy to production", "depends_on": ["verify"]},
        ],
    ),
    (
        r"\b(build|implement|create|develop|add)\b",
        [
            {"id": "analyze", "description": "Analyze the requirements of: {goal}"},
            {"id": "design", "description": "Design a solution", "depends_on": ["analyze"]},
            {"id": "implement", "description": "Implement the parts of: {goal}",
             "depends_on": ["design"], "complex": True},
            {"id": "test", "description": "Test the result", "depends_on": ["implement"]},
        ],
    ),
]

#: What the example decomposer plans for a goal no rule matches.
GENERIC_TASKS: Final[list[dict[str, Any]]] = [
    {"id": "research", "description": "Find out what is needed for: {goal}"},
    {"id": "plan", "description": "Plan the work", "depends_on": ["research"]},
    {"id": "execute", "description": "Do the work", "depends_on": ["plan"]},
    {"id": "review", "description": "Check the result against the goal", "depends_on": ["execute"]},
]

#: The example rule-based decomposer; on the command line:
#: ``--decomposer singularity_workflow.goals.decomposers:rule_based_decomposer``.
rule_based_decomposer = RuleBasedDecomposer(SOFTWARE_RULES, default=GENERIC_TASKS)


# --------------------------------------------------------------------------------------------
# LLMs over an OpenAI-compatible chat-completions endpoint
# --------------------------------------------------------------------------------------------

DEFAULT_SYSTEM_PROMPT: Final = """\
You are a planner. Break the user's goal into a small directed acyclic graph of tasks.
Reply with JSON only, no prose, in exactly this form:
{"tasks": [{"id": "snake_case_id", "description": "what to do", "depends_on": ["other_id"]}]}
Rules: ids are unique, snake_case, at most 40 characters; depends_on lists ids of tasks that must
finish first and never forms a cycle; a task may carry "subtasks" (a list of tasks in the same
form) or "complex": true when it should be planned in more detail later."""

_FENCE: Final = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?```\s*$", re.DOTALL)


def _excerpt(text: str, limit: int = 200) -> str:
    """Return ``text`` on one line, cut to ``limit`` characters, for error messages."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def parse_task_json(content: str) -> TaskList:
    """Parse a model's reply into a task list, or raise DecompositionError saying what is wrong.

    Accepts the JSON alone or inside a Markdown code fence, as a list of tasks or as
    ``{"tasks": [...]}``. The tasks themselves are checked by the orchestrator.
    """
    if not isinstance(content, str) or not content.strip():
        raise DecompositionError("the model's reply is empty")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group("body").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecompositionError(
            f"the model's reply is not valid JSON ({exc.msg} at line {exc.lineno} column"
            f" {exc.colno}): {_excerpt(content)}",
            hint="The model must answer with JSON only; a lower temperature, a model that"
            " supports JSON output, or json_mode=True usually helps.",
        ) from None
    if isinstance(data, Mapping):
        if "tasks" not in data:
            raise DecompositionError(
                "the model's reply is a JSON object without a \"tasks\" list"
                f" (keys: {', '.join(sorted(map(str, data))) or 'none'})"
            )
        data = data["tasks"]
    if not isinstance(data, list):
        raise DecompositionError(
            f"the model's task list is a JSON {type(data).__name__}, not a list: "
            f"{_excerpt(content)}"
        )
    return data


class OpenAIChatDecomposer:
    """Ask a chat model for the task list through an OpenAI-compatible endpoint (stdlib only).

    ``url``: the API base (``https://api.openai.com/v1``, ``http://localhost:11434/v1`` ...) or
    the full ``.../chat/completions`` URL. ``api_key``: sent as ``Authorization: Bearer``
    (None or "" for servers that need none). ``model``: the model name. ``timeout``: seconds for
    one HTTP request. ``json_mode``: also send ``response_format={"type": "json_object"}``
    (only for servers that support it). Each call is one POST; failures raise
    DecompositionError naming the problem (HTTP status and body, unreachable server, a reply
    that is not a chat completion, content that is not a JSON task list), or
    DecompositionTimeout.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None,
        model: str,
        *,
        timeout: float = 60.0,
        temperature: float = 0.0,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        json_mode: bool = False,
    ) -> None:
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.api_key = api_key
        self.model = model
        self.timeout = timeout
        self.temperature = temperature
        self.system_prompt = system_prompt
        self.json_mode = json_mode

    def __repr__(self) -> str:
        return f"OpenAIChatDecomposer({self.endpoint!r}, model={self.model!r})"  # no key

    def request_body(self, goal: str) -> dict[str, Any]:
        """Return the chat-completions request for ``goal``."""
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "messages": [
                {"role": "system", "content": self.system_prompt},
                {"role": "user", "content": f"Goal: {goal}"},
            ],
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    def __call__(self, goal: str) -> TaskList:
        """POST the goal to the endpoint and return the task list from the model's reply."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.endpoint,
            data=json.dumps(self.request_body(goal)).encode(),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise DecompositionError(
                f"the chat endpoint {self.endpoint} answered HTTP {exc.code}: {_excerpt(detail)}",
                hint="Check the URL, the API key and the model name."
                if exc.code in (401, 403, 404) else None,
            ) from None
        except TimeoutError:
            raise DecompositionTimeout(
                f"the chat endpoint {self.endpoint} did not answer within {self.timeout:g} s"
            ) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise DecompositionTimeout(
                    f"the chat endpoint {self.endpoint} did not answer within {self.timeout:g} s"
                ) from None
            raise DecompositionError(
                f"cannot reach the chat endpoint {self.endpoint}: {exc.reason}"
            ) from None
        try:
            reply = json.loads(raw)
        except ValueError:
            raise DecompositionError(
                f"the chat endpoint {self.endpoint} did not return JSON:"
                f" {_excerpt(raw.decode('utf-8', 'replace'))}"
            ) from None
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise DecompositionError(
                f"the reply of {self.endpoint} is not a chat completion (no"
                f" choices[0].message.content): {_excerpt(json.dumps(reply))}"
            ) from None
        return parse_task_json(content)


# --------------------------------------------------------------------------------------------
# A fake endpoint for tests and demos
# --------------------------------------------------------------------------------------------

#: A reply: the assistant's content (str), or ``(status, raw body)`` for a raw HTTP answer.
Reply = str | tuple[int, str]


def _fake_plan(request: Mapping[str, Any]) -> str:
    """Plan four generic tasks (one with two subtasks) for the requested goal: the fake model."""
    goal = str(request["messages"][-1]["content"]).removeprefix("Goal: ")
    tasks = [
        {"id": "research", "description": f"Research: {goal}"},
        {"id": "outline", "description": "Outline the answer", "depends_on": ["research"]},
        {"id": "draft", "description": "Draft each part", "depends_on": ["outline"],
         "subtasks": [{"id": "draft_intro", "description": "Draft the introduction"},
                      {"id": "draft_body", "description": "Draft the body"}]},
        {"id": "review", "description": "Review the draft", "depends_on": ["draft"]},
    ]
    return "```json\n" + json.dumps({"tasks": tasks}, indent=2) + "\n```"


class FakeChatServer:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint on 127.0.0.1 (random port).

    ``reply``: the assistant content to answer with, or a function of the request body
    returning it (or ``(status, raw body)`` for an HTTP error or a broken reply); default: a
    fixed generic plan for the goal. ``delay``: seconds to wait before answering (timeouts).
    ``requests`` records each request body. Use as a context manager, or start()/stop().
    """

    def __init__(
        self,
        reply: Reply | Callable[[dict[str, Any]], Reply] | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        self.reply = reply if reply is not None else _fake_plan
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        """The API base URL to give OpenAIChatDecomposer (``http://127.0.0.1:<port>/v1``)."""
        if self._server is None:
            raise RuntimeError("the fake chat server is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeChatServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                fake.requests.append(body)
                fake.headers.append(dict(self.headers.items()))
                if fake.delay:
                    fake._stopped.wait(fake.delay)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, json.dumps({"error": {"message": "not found"}}))
                    return
                answer = fake.reply(body) if callable(fake.reply) else fake.reply
                if isinstance(answer, tuple):
                    self._send(answer[0], answer[1])
                    return
                self._send(200, json.dumps({
                    "id": f"chatcmpl-fake-{len(fake.requests)}",
                    "object": "chat.completion",
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": answer}}],
                }))

            def _send(self, status: int, text: str) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet: tests and demos print what matters themselves."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="sw-fake-chat",
                         daemon=True).start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
