"""Workflow definitions: @step, the Elixir library's list form, and validation before the DB.

Most tests here need no database: a definition is checked in Python first. The ones that do
register definitions check that what Python sends is what the server stores, and that the
client's error codes are the ones the server itself raises for the same mistake.
"""

from __future__ import annotations

import asyncio
import pickle
import types
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from singularity_workflow import Client, DefinitionError, Workflow, WorkflowError, step
from singularity_workflow.definitions import (
    WorkflowDef,
    find_handler,
    register_handlers,
    registry,
    workflow_def,
)

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=1"


# -- the Elixir library's example, in both forms -----------------------------------------------


class ListFormWorkflow:
    """The Elixir library's MyWorkflow (fetch -> process -> save) in the list form."""

    @staticmethod
    def __workflow_steps__() -> list[tuple[str, Callable[[Any], Any], dict[str, Any]]]:
        return [
            ("fetch", ListFormWorkflow.fetch, {"depends_on": []}),
            ("process", ListFormWorkflow.process, {"depends_on": ["fetch"]}),
            ("save", ListFormWorkflow.save, {"depends_on": ["process"]}),
        ]

    @staticmethod
    def fetch(input: dict[str, Any]) -> dict[str, Any]:
        """Load the user's data."""
        return {"data": f"user {input['run']['user_id']}"}

    @staticmethod
    def process(input: dict[str, Any]) -> dict[str, Any]:
        """Transform what fetch loaded."""
        return {"result": input["fetch"]["data"].upper()}

    @staticmethod
    def save(input: dict[str, Any]) -> dict[str, Any]:
        """Pretend to store the result."""
        return {"saved": True}


class Checkout(Workflow):
    """The decorator form, with instance state, a staticmethod and a function reference."""

    slug = "tests.Checkout"
    timeout = 600

    def __init__(self) -> None:
        self.calls: list[str] = []

    @step
    def fetch(self, input: dict[str, Any]) -> dict[str, Any]:
        """Return the items to price."""
        self.calls.append("fetch")
        return {"items": [1, 2, 3]}

    @step(depends_on=[fetch], map=True, execution="distributed", queue="pricing")
    def price(self, item: int) -> int:
        """Price one item."""
        self.calls.append("price")
        return item * 10

    @step(depends_on=["price", "fetch"], max_attempts=5, timeout=30, base_delay=2)
    @staticmethod
    def total(input: dict[str, Any]) -> int:
        """Add up the prices."""
        return sum(input["price"])


def test_the_decorator_form_gives_the_normalised_register_flow_json() -> None:
    wdef = workflow_def(Checkout)
    assert wdef.slug == "tests.Checkout"
    assert wdef.definition() == {
        "slug": "tests.Checkout",
        "timeout": 600,
        "steps": [
            {
                "slug": "fetch",
                "depends_on": [],
                "type": "single",
                "map_over": None,
                "execution": "local",
                "queue": "local",
                "resources": [],
                "max_attempts": 3,
                "base_delay": 1,
                "timeout": 60,
                "start_delay": 0,
            },
            {
                "slug": "price",
                "depends_on": ["fetch"],
                "type": "map",
                "map_over": "fetch",
                "execution": "distributed",
                "queue": "pricing",
                "resources": [],
                "max_attempts": 3,
                "base_delay": 1,
                "timeout": 60,
                "start_delay": 0,
            },
            {
                "slug": "total",
                "depends_on": ["fetch", "price"],
                "type": "single",
                "map_over": None,
                "execution": "local",
                "queue": "local",
                "resources": [],
                "max_attempts": 5,
                "base_delay": 2,
                "timeout": 30,
                "start_delay": 0,
            },
        ],
    }


def test_method_handlers_share_one_instance_made_without_arguments() -> None:
    wdef = workflow_def(Checkout)
    assert wdef.handler("fetch")({"run": {}}) == {"items": [1, 2, 3]}
    assert wdef.handler("price")(4) == 40
    assert wdef.handler("total")({"price": [10, 20]}) == 30
    instance = wdef.handler("fetch").__self__  # type: ignore[attr-defined]
    assert isinstance(instance, Checkout)
    assert instance.calls == ["fetch", "price"]
    assert wdef.handler("price").__self__ is instance  # type: ignore[attr-defined]


def test_a_definition_from_an_instance_uses_that_instance() -> None:
    mine = Checkout()
    wdef = workflow_def(mine)
    wdef.handler("fetch")({"run": {}})
    assert mine.calls == ["fetch"]
    assert wdef.slug == "tests.Checkout"


def test_the_list_form_keeps_order_and_calls_functions_as_given() -> None:
    wdef = workflow_def(ListFormWorkflow)
    assert [s.name for s in wdef.steps] == ["fetch", "process", "save"]
    assert [s.depends_on for s in wdef.steps] == [(), ("fetch",), ("process",)]
    # The Elixir library's default execution is local.
    assert {s.execution for s in wdef.steps} == {"local"}
    out = wdef.handler("fetch")({"run": {"user_id": 123}})
    assert out == {"data": "user 123"}
    assert wdef.handler("process")({"fetch": out}) == {"result": "USER 123"}
    assert wdef.slug == f"{__name__}.ListFormWorkflow"


def test_list_form_options_may_be_keyword_pairs_and_resources_elixir_style() -> None:
    def analyze(input: Any) -> Any:
        return input

    def train(input: Any) -> Any:
        return input

    class Gpu:
        __workflow_slug__ = "tests.Gpu"
        __workflow_steps__ = [
            ("analyze", analyze, [("execution", "distributed"), ("queue", "cpu_workers")]),
            (
                "train_model",
                train,
                [
                    ("depends_on", ["analyze"]),
                    ("execution", "distributed"),
                    ("queue", "gpu_workers"),
                    ("resources", [("gpu", True), ("fpga", False)]),
                ],
            ),
        ]

    wdef = workflow_def(Gpu)
    analyze_def, train_def = wdef.steps
    assert (analyze_def.queue, analyze_def.execution) == ("cpu_workers", "distributed")
    assert train_def.resources == ("gpu",)
    assert train_def.queue == "gpu_workers"


def test_a_module_with_workflow_steps_is_a_workflow() -> None:
    module = types.ModuleType("tests_generated.pipeline")

    def only(input: Any) -> Any:
        return 1

    module.__workflow_steps__ = lambda: [("only", only, {})]  # type: ignore[attr-defined]
    wdef = workflow_def(module)
    assert wdef.slug == "tests_generated.pipeline"
    assert wdef.handler("only") is only


def test_map_step_variants() -> None:
    class Maps(Workflow):
        slug = "tests.Maps"

        @step(map=True)
        def each_input(self, item: Any) -> Any:
            return item

        @step
        def a(self, input: Any) -> Any:
            return [1]

        @step
        def b(self, input: Any) -> Any:
            return [2]

        @step(depends_on=["a", "b"], map="b")
        def over_b(self, item: Any) -> Any:
            return item

        @step(map="a")
        def implied(self, item: Any) -> Any:
            return item

    by_name = {s.name: s for s in workflow_def(Maps).steps}
    assert (by_name["each_input"].type, by_name["each_input"].map_over) == ("map", None)
    assert (by_name["over_b"].type, by_name["over_b"].map_over) == ("map", "b")
    # Mapping over a step implies depending on it.
    assert by_name["implied"].depends_on == ("a",)
    assert by_name["a"].type == "single"


def test_async_handlers_are_kept_as_coroutine_functions() -> None:
    class Async(Workflow):
        slug = "tests.Async"

        @step
        async def wait(self, input: Any) -> int:
            await asyncio.sleep(0)
            return 7

    handler = workflow_def(Async).handler("wait")
    assert asyncio.iscoroutinefunction(handler)
    assert asyncio.run(handler({})) == 7


def test_workflow_subclasses_enter_the_registry_when_defined() -> None:
    class Registered(Workflow):
        slug = "tests.Registered"

        @step
        def one(self, input: Any) -> str:
            return "one"

    assert registry["tests.Registered"].steps[0].name == "one"
    handler = find_handler("tests.Registered", "one")
    assert handler is not None and handler({}) == "one"
    assert find_handler("tests.Registered", "two") is None
    assert find_handler("tests.NotThere", "one") is None


def test_a_subclass_without_steps_is_an_abstract_base_and_steps_are_inherited() -> None:
    class Base(Workflow):
        @step
        def shared(self, input: Any) -> str:
            return "base"

    class Empty(Workflow):
        pass  # no steps: no error, nothing registered

    class Child(Base):
        slug = "tests.Child"

        @step(depends_on=["shared"])
        def extra(self, input: Any) -> str:
            return "child"

    assert [s.name for s in workflow_def(Child).steps] == ["shared", "extra"]
    assert workflow_def(Child).handler("shared")({}) == "base"
    assert all(d.source is not Empty for d in registry.values())
    with pytest.raises(DefinitionError) as err:
        workflow_def(Empty)
    assert err.value.code == "WF016"


def test_register_handlers_records_handlers_of_a_database_defined_flow() -> None:
    wdef = register_handlers("tests.dynamic", {"step1": lambda x: x + 1})
    handler = find_handler("tests.dynamic", "step1")
    assert handler is not None and handler(1) == 2
    with pytest.raises(DefinitionError):
        wdef.definition()
    with pytest.raises(DefinitionError) as err:
        register_handlers("tests.dynamic", {"run": lambda x: x})
    assert err.value.code == "WF001"


def test_default_slugs_are_valid_flow_names() -> None:
    def make() -> type:
        class Inner:
            __workflow_steps__ = [("s", print, {})]

        return Inner

    slug = workflow_def(make()).slug
    assert (
        slug == f"{__name__}.test_default_slugs_are_valid_flow_names._locals_.make._locals_.Inner"
    )
    long_cls = type("X" * 200, (), {"__workflow_steps__": [("s", print, {})]})
    long_slug = workflow_def(long_cls).slug
    assert len(long_slug) == 128
    assert long_slug != workflow_def(type("X" * 199, (), dict(long_cls.__dict__))).slug


# -- validation before the database ------------------------------------------------------------


def _noop(input: Any) -> Any:
    return input


def _listed(*steps: tuple[Any, ...], **attrs: Any) -> type:
    """Make a list-form workflow class with the given entries (and class attributes)."""
    return type("Listed", (), {"__workflow_steps__": list(steps), **attrs})


INVALID: list[tuple[str, Callable[[], type], str, str]] = [
    (
        "unknown dependency",
        lambda: _listed(("a", _noop, {"depends_on": ["ghost"]})),
        "WF003",
        "ghost",
    ),
    (
        "cycle",
        lambda: _listed(
            ("a", _noop, {"depends_on": ["c"]}),
            ("b", _noop, {"depends_on": ["a"]}),
            ("c", _noop, {"depends_on": ["b"]}),
            ("d", _noop, {}),
        ),
        "WF005",
        "a, b, c",
    ),
    ("duplicate", lambda: _listed(("a", _noop, {}), ("a", _noop, {})), "WF004", "a"),
    ("self dependency", lambda: _listed(("a", _noop, {"depends_on": ["a"]})), "WF006", "a"),
    ("non-callable", lambda: _listed(("a", "not a function", {})), "WF010", "not callable"),
    ("no steps", lambda: _listed(), "WF016", "no steps"),
    ("reserved step name", lambda: _listed(("run", _noop, {})), "WF001", "run"),
    ("bad step name", lambda: _listed(("9lives", _noop, {})), "WF001", "9lives"),
    (
        "bad execution",
        lambda: _listed(("a", _noop, {"execution": "remote"})),
        "WF010",
        "execution",
    ),
    ("zero attempts", lambda: _listed(("a", _noop, {"max_attempts": 0})), "WF010", "max_attempts"),
    ("timeout as text", lambda: _listed(("a", _noop, {"timeout": "60"})), "WF010", "timeout"),
    ("bool as int", lambda: _listed(("a", _noop, {"start_delay": True})), "WF010", "start_delay"),
    ("negative delay", lambda: _listed(("a", _noop, {"base_delay": -1})), "WF010", "base_delay"),
    ("unknown option", lambda: _listed(("a", _noop, {"retries": 3})), "WF010", "retries"),
    (
        "local step with a queue",
        lambda: _listed(("a", _noop, {"queue": "gpu"})),
        "WF010",
        "local",
    ),
    (
        "bad queue name",
        lambda: _listed(("a", _noop, {"execution": "distributed", "queue": "GPU-Workers"})),
        "WF001",
        "GPU-Workers",
    ),
    (
        "reserved queue",
        lambda: _listed(("a", _noop, {"execution": "distributed", "queue": "local"})),
        "WF010",
        "reserved",
    ),
    (
        "ambiguous map",
        lambda: _listed(
            ("a", _noop, {}),
            ("b", _noop, {}),
            ("m", _noop, {"depends_on": ["a", "b"], "map": True}),
        ),
        "WF010",
        "map",
    ),
    ("bad resource", lambda: _listed(("a", _noop, {"resources": ["g p u"]})), "WF010", "g p u"),
    (
        "bad flow slug",
        lambda: _listed(("a", _noop, {}), __workflow_slug__="no spaces"),
        "WF001",
        "",
    ),
    ("zero flow timeout", lambda: _listed(("a", _noop, {}), __workflow_timeout__=0), "WF010", ""),
]


@pytest.mark.parametrize(
    ("make", "code", "needle"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_definitions_raise_definition_error_with_the_servers_code(
    make: Callable[[], type], code: str, needle: str
) -> None:
    with pytest.raises(DefinitionError) as err:
        workflow_def(make())
    assert err.value.code == code
    assert needle in err.value.message
    assert isinstance(err.value, WorkflowError)


def test_invalid_definitions_fail_before_any_connection() -> None:
    # An unreachable database: reaching it would raise OperationalError, not DefinitionError.
    client = Client(UNREACHABLE)
    with pytest.raises(DefinitionError) as err:
        client.register_flow(INVALID[1][1]())
    assert err.value.code == "WF005"


def test_a_cycle_in_a_workflow_class_fails_when_the_class_is_defined() -> None:
    with pytest.raises(DefinitionError) as err:

        class Loop(Workflow):
            @step(depends_on=["b"])
            def a(self, input: Any) -> None: ...

            @step(depends_on=["a"])
            def b(self, input: Any) -> None: ...

    assert err.value.code == "WF005"


def test_step_rejects_what_it_cannot_mark() -> None:
    with pytest.raises(DefinitionError) as err:
        step(max_attempts=2)(42)  # type: ignore[type-var]
    assert err.value.code == "WF010"


def test_definition_errors_survive_pickling() -> None:
    error = DefinitionError("boom", code="WF005", hint="fix it")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.code, copy.message, copy.hint) == (
        DefinitionError,
        "WF005",
        "boom",
        "fix it",
    )


# -- the server agrees -------------------------------------------------------------------------

# The same mistakes sent raw to the server: its SQLSTATE must be the one the client raised.
SERVER_CASES = {
    "unknown dependency": [{"slug": "a", "depends_on": ["ghost"]}],
    "cycle": [
        {"slug": "a", "depends_on": ["c"]},
        {"slug": "b", "depends_on": ["a"]},
        {"slug": "c", "depends_on": ["b"]},
        {"slug": "d"},
    ],
    "duplicate": [{"slug": "a"}, {"slug": "a"}],
    "self dependency": [{"slug": "a", "depends_on": ["a"]}],
    "no steps": [],
    "reserved step name": [{"slug": "run"}],
    "bad execution": [{"slug": "a", "execution": "remote"}],
    "zero attempts": [{"slug": "a", "max_attempts": 0}],
    "timeout as text": [{"slug": "a", "timeout": "60"}],
    "unknown option": [{"slug": "a", "retries": 3}],
    "local step with a queue": [{"slug": "a", "execution": "local", "queue": "gpu"}],
    "bad queue name": [{"slug": "a", "execution": "distributed", "queue": "GPU-Workers"}],
    "reserved queue": [{"slug": "a", "execution": "distributed", "queue": "local"}],
    "ambiguous map": [
        {"slug": "a"},
        {"slug": "b"},
        {"slug": "m", "depends_on": ["a", "b"], "type": "map"},
    ],
    "bad resource": [{"slug": "a", "resources": ["g p u"]}],
}


@pytest.mark.parametrize("case", sorted(SERVER_CASES))
def test_the_client_raises_the_code_the_server_raises(db_url: str, case: str) -> None:
    make = next(c[1] for c in INVALID if c[0] == case)
    client_code = next(c[2] for c in INVALID if c[0] == case)
    with pytest.raises(DefinitionError):
        workflow_def(make())
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(WorkflowError) as err:
            Client(conn).register_flow(
                {"slug": f"tests.server.{case.replace(' ', '_')}", "steps": SERVER_CASES[case]}
            )
    assert err.value.code == client_code


def test_the_server_stores_exactly_the_definition_python_sends(db_url: str) -> None:
    with Client(db_url) as client:
        for source in (Checkout, ListFormWorkflow):
            wdef: WorkflowDef = workflow_def(source)
            client.register_flow(wdef)
            stored = client.get_flow(wdef.slug)
            sent = wdef.definition()
            assert stored["timeout"] == sent["timeout"]
            key = {s["slug"]: s for s in sent["steps"]}
            assert {s["slug"]: s for s in stored["steps"]} == key
