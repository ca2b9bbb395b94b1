"""Goal-driven orchestration: decomposers, task graphs (flattening, errors), approval, execution.

The LLM decomposer is tested against FakeChatServer (http.server on 127.0.0.1, no internet).
Every graph error is checked by SQLSTATE and for storing nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from singularity_workflow import (
    Client,
    DecompositionError,
    DecompositionTimeout,
    InvalidState,
    MissingStepFunctions,
    Orchestrator,
    RunFailed,
    TaskGraphNotFound,
    Worker,
    WorkflowComposer,
)
from singularity_workflow.cli import main as cli_main
from singularity_workflow.goals import flatten_tasks, graph_flow_slug
from singularity_workflow.goals.decomposers import (
    FakeChatServer,
    OpenAIChatDecomposer,
    RuleBasedDecomposer,
    parse_task_json,
    rule_based_decomposer,
)

REPO = Path(__file__).resolve().parents[2]

LINEAR = [
    {"id": "analyze", "description": "Analyze requirements", "depends_on": []},
    {"id": "design", "description": "Design solution", "depends_on": ["analyze"]},
    {"id": "implement", "description": "Implement", "depends_on": ["design"]},
]


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


@pytest.fixture
def orch(client: Client) -> Orchestrator:
    return Orchestrator(client)


def graphs_stored(client: Client) -> int:
    with client.connection() as conn:
        return int(conn.execute("select count(*) from workflow.task_graphs").fetchone()[0])  # type: ignore[index]


def by_id(tasks: Any) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in tasks}


# -- flattening --------------------------------------------------------------------------------

HIERARCHY = [
    {"id": "plan", "description": "Plan"},
    {"id": "build", "description": "Build", "depends_on": ["plan"], "subtasks": [
        {"id": "api", "description": "API", "subtasks": [
            {"id": "schema", "description": "Schema"},
            {"id": "endpoints", "description": "Endpoints", "depends_on": ["schema"]},
        ]},
        {"id": "ui", "description": "UI", "owner": "frontend team"},
    ]},
    {"id": "ship", "description": "Ship", "depends_on": ["build"]},
    {"id": "docs", "description": "Docs", "depends_on": ["api"]},
]


def test_depending_on_a_parent_means_depending_on_all_its_leaves() -> None:
    from singularity_workflow.goals._graph import Decomposition as _Decomposition

    nodes = _Decomposition(lambda g: [], 3, 5.0).build(HIERARCHY, 0, "goal", "")
    flat = by_id(flatten_tasks(nodes))
    assert list(flat) == ["plan", "schema", "endpoints", "ui", "ship", "docs"]  # leaves only
    assert flat["ship"]["depends_on"] == ["endpoints", "schema", "ui"]
    assert flat["docs"]["depends_on"] == ["endpoints", "schema"]
    # A parent's own dependencies apply to every leaf under it.
    assert flat["schema"]["depends_on"] == ["plan"]
    assert flat["endpoints"]["depends_on"] == ["plan", "schema"]
    assert flat["ui"]["depends_on"] == ["plan"]
    assert (flat["schema"]["depth"], flat["ui"]["depth"], flat["plan"]["depth"]) == (2, 1, 0)
    assert (flat["schema"]["parent"], flat["ui"]["parent"], flat["plan"]["parent"]) == (
        "api", "build", None)
    assert flat["ui"]["owner"] == "frontend team"  # extra keys are kept


def test_a_hierarchical_graph_is_stored_flat_with_its_tree_for_display(
    orch: Orchestrator,
) -> None:
    graph = orch.decompose_goal("Ship the product", lambda goal: HIERARCHY)
    assert [t["id"] for t in graph.tasks] == ["plan", "schema", "endpoints", "ui", "ship", "docs"]
    assert graph.hierarchy[1]["subtasks"][0]["subtasks"][1]["id"] == "endpoints"
    assert graph.hierarchy[1]["depends_on"] == ["plan"]  # as decomposed, not expanded
    assert graph.approved_at is None and graph.flow_slug is None
    assert graph.decomposed_at is not None
    tree = graph.tree()
    assert "Ship the product" in tree and "not approved" in tree
    assert "│   ├── api: API" in tree
    assert "│   │   └── endpoints: Endpoints  [after schema]" in tree
    assert "└── docs: Docs  [after api]" in tree


# -- errors ------------------------------------------------------------------------------------

BAD_GRAPHS: list[tuple[str, Any, str, str]] = [
    ("empty", [], "WF016", "no tasks"),
    ("not a list", "analyze, then design", "WF010", "list of task dicts"),
    ("a task that is not a dict", ["analyze"], "WF010", "must be a dict"),
    ("a task without id", [{"description": "x"}], "WF010", "no string id"),
    ("an id that is no step name", [{"id": "Analyze requirements"}], "WF001", "valid step name"),
    ("depends_on as a string", [{"id": "a"}, {"id": "b", "depends_on": "a"}], "WF010",
     "depends_on must be a list"),
    ("a non-string dependency", [{"id": "a", "depends_on": [1]}], "WF010", "non-string"),
    ("a description that is no string", [{"id": "a", "description": 3}], "WF010",
     "description must be a string"),
    ("subtasks that are no list", [{"id": "a", "subtasks": {"id": "b"}}], "WF010",
     "subtasks must be a list"),
    ("duplicate id", [{"id": "a"}, {"id": "a"}], "WF004", "more than once"),
    ("duplicate id across levels", [{"id": "a", "subtasks": [{"id": "b"}]}, {"id": "b"}],
     "WF004", "more than once"),
    ("unknown dependency", [{"id": "a"}, {"id": "b", "depends_on": ["a", "ghost"]}], "WF003",
     "unknown task ghost"),
    ("self dependency", [{"id": "a", "depends_on": ["a"]}], "WF006", "itself"),
    ("cycle", [{"id": "a", "depends_on": ["c"]}, {"id": "b", "depends_on": ["a"]},
               {"id": "c", "depends_on": ["b"]}], "WF005", "cycle among: a, b, c"),
    ("cycle through a parent", [{"id": "p", "depends_on": ["q"], "subtasks": [{"id": "p1"}]},
                                {"id": "q", "depends_on": ["p1"]}], "WF005", "cycle"),
    ("depending on an ancestor", [{"id": "p", "subtasks": [{"id": "c", "depends_on": ["p"]}]}],
     "WF005", "contains it"),
    ("depending on an own subtask", [{"id": "p", "depends_on": ["c"], "subtasks": [{"id": "c"}]}],
     "WF005", "own subtask"),
    ("too deep", [{"id": "a", "subtasks": [{"id": "b", "subtasks": [{"id": "c", "subtasks": [
        {"id": "d"}]}]}]}], "WF010", "max_depth is 3"),
    ("Elixir error tuple", ("error", "quota exceeded"), "WF010", "quota exceeded"),
]


@pytest.mark.parametrize(("case", "output", "code", "words"), BAD_GRAPHS,
                         ids=[c[0] for c in BAD_GRAPHS])
def test_malformed_decompositions_get_a_clear_error_and_store_nothing(
    orch: Orchestrator, client: Client, case: str, output: Any, code: str, words: str
) -> None:
    before = graphs_stored(client)
    with pytest.raises(DecompositionError) as raised:
        orch.decompose_goal("goal", lambda goal: output)
    assert raised.value.code == code
    assert words in str(raised.value)
    assert graphs_stored(client) == before


def test_a_failing_decomposer_is_reported_with_the_goal(orch: Orchestrator) -> None:
    def broken(goal: str) -> list[Any]:
        raise ConnectionError("planner offline")

    with pytest.raises(DecompositionError, match="'Plan it'.*ConnectionError: planner offline"):
        orch.decompose_goal("Plan it", broken)


def test_decomposers_may_be_async_and_return_the_plain_tuple_or_a_tasks_object(
    orch: Orchestrator,
) -> None:
    async def planner(goal: str) -> tuple[str, list[dict[str, Any]]]:
        await asyncio.sleep(0.01)
        return ("ok", LINEAR)

    assert len(orch.decompose_goal("g", planner).tasks) == 3
    assert len(orch.decompose_goal("g", lambda g: {"tasks": LINEAR}).tasks) == 3


def test_decomposition_times_out_for_sync_and_async_decomposers(
    orch: Orchestrator, client: Client
) -> None:
    before = graphs_stored(client)

    def slow(goal: str) -> list[Any]:
        time.sleep(2)
        return LINEAR

    async def slow_async(goal: str) -> list[Any]:
        await asyncio.sleep(5)
        return LINEAR

    for decomposer in (slow, slow_async):
        started = time.monotonic()
        with pytest.raises(DecompositionTimeout, match="within 0.3 s"):
            orch.decompose_goal("g", decomposer, timeout=0.3)
        assert time.monotonic() - started < 1.5
    assert graphs_stored(client) == before


def test_complex_tasks_are_decomposed_again_up_to_max_depth(orch: Orchestrator) -> None:
    asked: list[str] = []

    def planner(text: str) -> list[dict[str, Any]]:
        asked.append(text)
        if text == "Build a shop":
            return [{"id": "design"},
                    {"id": "build", "description": "Build everything", "complex": True,
                     "depends_on": ["design"]},
                    {"id": "launch", "depends_on": ["build"]}]
        return [{"id": "part", "description": "More", "complex": True},
                {"id": "test", "depends_on": ["part"]}]

    graph = orch.decompose_goal("Build a shop", planner, max_depth=3)
    ids = [t["id"] for t in graph.tasks]
    # Level 1: build -> build__part, build__test; level 2: build__part -> its own two; the
    # complex task at the deepest level stays a leaf (max_depth 3: depths 0, 1, 2).
    assert ids == ["design", "build__part__part", "build__part__test", "build__test", "launch"]
    assert asked == ["Build a shop", "Build everything", "More"]
    tasks = by_id(graph.tasks)
    assert tasks["build__part__test"]["depends_on"] == ["build__part__part", "design"]
    assert tasks["build__test"]["depends_on"] == [
        "build__part__part", "build__part__test", "design"]
    assert tasks["launch"]["depends_on"] == ["build__part__part", "build__part__test",
                                             "build__test"]
    flat = orch.decompose_goal("Build a shop", planner, max_depth=1)
    assert [t["id"] for t in flat.tasks] == ["design", "build", "launch"]


def test_unknown_graph_ids(orch: Orchestrator) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    for call in (lambda: orch.get_graph(missing), lambda: orch.approve(missing),
                 lambda: orch.execute_graph(missing, fallback=lambda t, i: None)):
        with pytest.raises(TaskGraphNotFound) as raised:
            call()
        assert raised.value.code == "WF017"


# -- preview, approve, execute -----------------------------------------------------------------


def test_preview_then_approve_then_execute(orch: Orchestrator, client: Client) -> None:
    graph = orch.decompose_goal("Build user authentication", lambda goal: LINEAR)
    assert not graph.approved
    seen: list[tuple[str, str, list[str]]] = []

    def agent(task: dict[str, Any], input: dict[str, Any]) -> dict[str, Any]:
        seen.append((task["id"], task["description"], sorted(input)))
        return {"done": task["id"]}

    steps = {"implement": lambda i: {"code": "ok", "after": i["design"]["done"],
                                     "goal": i["run"]["goal"]}}
    with pytest.raises(InvalidState) as raised:
        orch.execute_graph(graph.graph_id, steps, fallback=agent)
    assert raised.value.code == "WF013"
    assert not seen and orch.get_graph(graph.graph_id).flow_slug is None

    approved = orch.approve(graph.graph_id)
    assert approved.approved and orch.approve(graph.graph_id).approved_at == approved.approved_at

    result = orch.execute_graph(graph.graph_id, steps, fallback=agent, input={"user": 7})
    assert result.output == {"implement": {"code": "ok", "after": "design",
                                           "goal": "Build user authentication"}}
    # The fallback got each task's description and its dependencies' outputs.
    assert seen == [("analyze", "Analyze requirements", ["run"]),
                    ("design", "Design solution", ["analyze", "run"])]
    after = orch.get_graph(graph.graph_id)
    assert after.flow_slug == graph_flow_slug(graph.graph_id)
    assert after.last_run_id == result.run_id
    run = client.get_run_status(result.run_id)
    assert run.input == {"goal": "Build user authentication",
                            "graph_id": str(graph.graph_id), "user": 7}

    again = orch.execute_graph(graph.graph_id, steps, fallback=agent)  # a graph can run again
    assert again.run_id != result.run_id
    assert orch.get_graph(graph.graph_id).last_run_id == again.run_id


def test_missing_step_functions_are_all_reported_before_anything_runs(
    orch: Orchestrator, client: Client
) -> None:
    graph = orch.decompose_goal("g", lambda goal: LINEAR)
    orch.approve(graph.graph_id)
    with pytest.raises(MissingStepFunctions) as raised:
        orch.execute_graph(graph.graph_id, {"design": lambda i: 1})
    assert raised.value.missing == ("analyze", "implement")
    assert orch.get_graph(graph.graph_id).flow_slug is None
    before = graphs_stored(client)
    with pytest.raises(MissingStepFunctions):
        orch.execute_goal("g", lambda goal: LINEAR, {"design": lambda i: 1})
    stored = graphs_stored(client)
    assert stored == before + 1  # kept for inspection, but never approved nor run
    with client.connection() as conn:
        row = conn.execute("select approved_at, flow_slug from workflow.task_graphs"
                           " order by created_at desc limit 1").fetchone()
    assert row == (None, None)


def test_a_failing_task_fails_the_run_and_the_run_is_recorded(orch: Orchestrator) -> None:
    graph = orch.decompose_goal("g", lambda goal: LINEAR)
    orch.approve(graph.graph_id)

    def boom(_: Any) -> None:
        raise RuntimeError("design rejected")

    with pytest.raises(RunFailed) as raised:
        Orchestrator(orch.client, max_attempts=1).execute_graph(
            graph.graph_id, {"design": boom}, fallback=lambda t, i: "ok")
    assert raised.value.step == "design"
    assert orch.get_graph(graph.graph_id).last_run_id == raised.value.run_id


def test_execute_goal_and_compose_from_goal_do_it_in_one_call(
    orch: Orchestrator, client: Client
) -> None:
    steps = {"analyze": lambda i: 1, "design": lambda i: i["analyze"] + 1,
             "implement": lambda i: i["design"] + 1}
    result = orch.execute_goal("Build it", lambda goal: LINEAR, steps)
    assert result.output == {"implement": 3}

    async def async_agent(task: dict[str, Any], input: dict[str, Any]) -> str:
        await asyncio.sleep(0)
        return task["description"].upper()

    composed = WorkflowComposer(client).compose_from_goal(
        "Deploy it", rule_based_decomposer, fallback=async_agent)
    assert composed.output == {"production": "DEPLOY TO PRODUCTION"}


def test_a_200_task_generated_graph_runs_on_workers(db_url: str, client: Client) -> None:
    # 20 layers of 10 tasks; each task depends on two tasks of the layer before.
    def generate(goal: str) -> list[dict[str, Any]]:
        tasks = []
        for layer in range(20):
            for i in range(10):
                deps = [] if layer == 0 else [f"t{layer - 1}_{i}", f"t{layer - 1}_{(i + 3) % 10}"]
                tasks.append({"id": f"t{layer}_{i}", "description": f"task {layer}.{i}",
                              "depends_on": deps})
        return tasks

    def work(task: dict[str, Any], input: dict[str, Any]) -> int:
        return 1 + sum(v for k, v in input.items() if k != "run")

    orch = Orchestrator(client, execution="distributed", queue="htdag_big", step_timeout=30)
    workers = [Worker(db_url, ["htdag_big"], concurrency=8, poll_interval=1) for _ in range(2)]
    for w in workers:
        w.run_in_thread()
    started = time.monotonic()
    try:
        result = orch.execute_goal("Big plan", generate, fallback=work, timeout=60)
    finally:
        for w in workers:
            w.stop()
        for w in workers:
            w.join(20)
    elapsed = time.monotonic() - started
    with client.connection() as conn:
        graph_id = conn.execute("select graph_id from workflow.task_graphs where last_run_id = %s",
                                [result.run_id]).fetchone()[0]  # type: ignore[index]
    assert len(orch.get_graph(graph_id).tasks) == 200
    # Each task returns 1 + the sum of its dependencies' outputs: recompute the last layer.
    expected = [1] * 10
    for _ in range(1, 20):
        expected = [1 + expected[i] + expected[(i + 3) % 10] for i in range(10)]
    assert result.output == {f"t19_{i}": expected[i] for i in range(10)}
    with client.connection() as conn:
        count, executors = conn.execute(
            "select count(*), count(distinct worker_id) from workflow.tasks where run_id = %s"
            " and status = 'completed'", [result.run_id]).fetchone()  # type: ignore[misc]
    assert count == 200 and executors == 2
    assert elapsed < 30, f"200 tasks took {elapsed:.1f} s"


# -- rule-based and LLM decomposers ------------------------------------------------------------


def test_rule_based_decomposer_picks_the_first_matching_rule() -> None:
    rules = RuleBasedDecomposer([(r"\bdeploy\b", [{"id": "ship", "description": "Ship {goal}"}])])
    assert rules("deploy now") == [{"id": "ship", "description": "Ship deploy now"}]
    with pytest.raises(ValueError, match="no rule matches"):
        rules("write a poem")
    assert [t["id"] for t in rule_based_decomposer("write a poem")] == [
        "research", "plan", "execute", "review"]
    assert rule_based_decomposer("Build a thing")[2]["complex"] is True


def test_llm_decomposer_asks_the_chat_endpoint_and_parses_the_plan(orch: Orchestrator) -> None:
    with FakeChatServer() as server:
        decomposer = OpenAIChatDecomposer(server.url, "sk-test", "planner-1")
        graph = orch.decompose_goal("Write a report", decomposer)
    assert [t["id"] for t in graph.tasks] == [
        "research", "outline", "draft_intro", "draft_body", "review"]
    assert by_id(graph.tasks)["review"]["depends_on"] == ["draft_body", "draft_intro"]
    request = server.requests[0]
    assert request["model"] == "planner-1"
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][-1] == {"role": "user", "content": "Goal: Write a report"}
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


MALFORMED_REPLIES: list[tuple[str, Any, str]] = [
    ("prose instead of JSON", "Sure! First analyze, then design.", "not valid JSON"),
    ("truncated JSON", '{"tasks": [{"id": "a"', "not valid JSON"),
    ("object without tasks", '{"steps": []}', 'without a "tasks" list (keys: steps)'),
    ("tasks not a list", '{"tasks": "a, b"}', "not a list"),
    ("empty reply", "", "reply is empty"),
    ("a task-level problem", '[{"id": "a"}, {"id": "a"}]', "more than once"),
    ("an id that is prose", '[{"id": "Analyze the requirements"}]', "not a valid step name"),
    ("HTTP error", (500, '{"error": {"message": "model overloaded"}}'),
     "answered HTTP 500: '{\"error\": {\"message\": \"model overloaded\"}}'"),
    ("bad key", (401, '{"error": "invalid api key"}'), "HTTP 401"),
    ("not a chat completion", (200, '{"object": "list", "data": []}'),
     "no choices[0].message.content"),
    ("not JSON at all", (200, "<html>gateway</html>"), "did not return JSON"),
]


@pytest.mark.parametrize(("case", "reply", "words"), MALFORMED_REPLIES,
                         ids=[c[0] for c in MALFORMED_REPLIES])
def test_malformed_llm_output_gets_an_error_naming_the_problem(
    orch: Orchestrator, client: Client, case: str, reply: Any, words: str
) -> None:
    before = graphs_stored(client)
    with FakeChatServer(reply) as server:
        with pytest.raises(DecompositionError) as raised:
            orch.decompose_goal("g", OpenAIChatDecomposer(server.url, None, "m"))
    assert words in str(raised.value)
    assert graphs_stored(client) == before


def test_llm_decomposer_timeouts(orch: Orchestrator) -> None:
    with FakeChatServer(delay=3) as server:
        with pytest.raises(DecompositionTimeout):  # the HTTP request's own timeout
            OpenAIChatDecomposer(server.url, None, "m", timeout=0.3)("g")
        started = time.monotonic()
        with pytest.raises(DecompositionTimeout):  # the orchestrator's
            orch.decompose_goal("g", OpenAIChatDecomposer(server.url, None, "m"), timeout=0.3)
        assert time.monotonic() - started < 2


def test_llm_decomposer_reports_an_unreachable_server() -> None:
    with FakeChatServer() as server:
        url = server.url
    with pytest.raises(DecompositionError, match="cannot reach the chat endpoint"):
        OpenAIChatDecomposer(url, None, "m", timeout=2)("g")


def test_parse_task_json_accepts_fences_lists_and_task_objects() -> None:
    assert parse_task_json('```json\n[{"id": "a"}]\n```') == [{"id": "a"}]
    assert parse_task_json('{"tasks": [{"id": "a"}]}') == [{"id": "a"}]
    assert OpenAIChatDecomposer("http://x/v1/chat/completions/", None, "m").endpoint == (
        "http://x/v1/chat/completions")
    decomposer = OpenAIChatDecomposer("http://x/v1", "k", "m", json_mode=True)
    assert decomposer.request_body("g")["response_format"] == {"type": "json_object"}
    assert "k" not in repr(decomposer)


# -- CLI and examples --------------------------------------------------------------------------


def test_goal_cli_plan_approve_run(db_url: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "goal_steps_mod.py").write_text(
        "STEPS = {'research': lambda i: 'facts'}\n"
        "def agent(task, input):\n"
        "    return task['id'] + ' after ' + ','.join(sorted(k for k in input if k != 'run'))\n"
    )
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    base = ["--database-url", db_url, "goal"]
    planned = runner.invoke(cli_main, [*base, "plan", "Write a poem", "--decomposer",
                                       "singularity_workflow.goals.decomposers:rule_based_decomposer"])
    assert planned.exit_code == 0, planned.output
    assert "├── research: Find out what is needed for: Write a poem" in planned.output
    graph_id = planned.output.split("graph ", 1)[1].split(" ", 1)[0]

    refused = runner.invoke(cli_main, [*base, "run", graph_id, "--fallback",
                                       "goal_steps_mod:agent"])
    assert refused.exit_code == 1 and "not approved" in refused.output
    approved = runner.invoke(cli_main, [*base, "approve", graph_id])
    assert approved.exit_code == 0 and "approved at" in approved.output
    ran = runner.invoke(cli_main, [*base, "run", graph_id, "--steps", "goal_steps_mod:STEPS",
                                   "--fallback", "goal_steps_mod:agent"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output[ran.output.index("{"):]) == {"review": "review after execute"}
    shown = runner.invoke(cli_main, [*base, "show", graph_id, "--json"])
    assert json.loads(shown.output)["last_run_id"] is not None

    bad = runner.invoke(cli_main, [*base, "plan", "x", "--decomposer", "nomodule_xyz:f"])
    assert bad.exit_code != 0 and "cannot import nomodule_xyz" in bad.output
    missing = runner.invoke(cli_main, [*base, "show", "00000000-0000-0000-0000-000000000000"])
    assert missing.exit_code == 1 and "WF017" in missing.output


def _run_example(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=db_url, PYTHONPATH=str(REPO / "python"))
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"):
        env.pop(name, None)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=90)


@pytest.mark.slow
def test_goal_examples_run_as_documented(db_url: str) -> None:
    rules = _run_example(db_url, "examples/goal_rules.py", "Build user authentication")
    assert rules.returncode == 0, rules.stderr
    assert "implement__integrate: Wire both sides together" in rules.stdout
    assert '"passed": true' in rules.stdout

    llm = _run_example(db_url, "examples/goal_llm.py", "--fake", "Write about queues")
    assert llm.returncode == 0, llm.stderr
    assert "└── review: Review the draft  [after draft]" in llm.stdout
    assert '"after": [\n      "draft_body",\n      "draft_intro"\n    ]' in llm.stdout

    unset = _run_example(db_url, "examples/goal_llm.py")
    assert unset.returncode == 2 and "OPENAI_BASE_URL" in unset.stderr

