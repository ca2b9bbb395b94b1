"""Per-workflow step defaults, and typed step I/O (Pydantic models and dataclasses).

* ``step_defaults`` fill the options a step leaves out, pass the step options' checks, and a
  step's own options win;
* an annotated input is parsed before the handler runs; a misfit fails the task at once (one
  attempt spent) with the validation message; an annotated output is serialised from the model;
* a Pydantic model that cannot describe JSON fails when the workflow is defined.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any
from uuid import UUID

import psycopg
import pytest
from pydantic import BaseModel, ConfigDict

from singularity_workflow import (
    Client,
    DefinitionError,
    StepContext,
    StepDefaults,
    Workflow,
    execute,
    step,
)
from singularity_workflow._errors import WorkflowError
from singularity_workflow.definitions import workflow_def


class Defaulted(Workflow):
    """Test fixture Defaulted."""

    slug = "typed_defaults"
    step_defaults = StepDefaults(execution="distributed", queue="cpu_q", timeout=30,
                                 max_attempts=5, resources={"gpu": True})

    @step
    def a(self, input: Any) -> int:
        """Step a."""
        return 1

    @step(depends_on=["a"], queue="other_q", timeout=7)
    def b(self, input: Any) -> int:
        """Step b."""
        return 2

    @step(depends_on=["b"], execution="local")
    def c(self, input: Any) -> int:
        """Step c."""
        return 3


def test_step_defaults_fill_what_a_step_leaves_out() -> None:
    d = workflow_def(Defaulted)
    a, b, c = d.step("a"), d.step("b"), d.step("c")
    assert (a.execution, a.queue, a.timeout, a.max_attempts, a.resources) == (
        "distributed", "cpu_q", 30, 5, ("gpu",))
    assert (b.execution, b.queue, b.timeout, b.max_attempts) == ("distributed", "other_q", 7, 5)
    # A step made local takes no default queue (a local step cannot name one).
    assert (c.execution, c.queue, c.timeout) == ("local", "local", 30)


class Plain(Workflow):
    """Test fixture Plain."""

    slug = "typed_plain"

    @step
    def a(self, input: Any) -> int:
        """Step a."""
        return 1


def test_step_defaults_as_a_dict() -> None:
    d = type("DictDefaults", (Workflow,), {
        "__module__": __name__, "slug": "typed_dict_defaults",
        "step_defaults": {"execution": "distributed", "timeout": 9},
        "a": step(lambda self, input: 1),
    })
    a = workflow_def(d).step("a")
    assert (a.execution, a.queue, a.timeout) == ("distributed", "default", 9)
    assert repr(StepDefaults(timeout=3)) == "StepDefaults(timeout=3)"
    assert dict(StepDefaults(queue=None)) == {"queue": None}


def test_without_defaults_nothing_changes() -> None:
    a = workflow_def(Plain).step("a")
    assert (a.execution, a.queue, a.timeout, a.max_attempts) == ("local", "local", 60, 3)


@pytest.mark.parametrize(("defaults", "match"), [
    ({"timeout": 0}, "timeout must be an integer >= 1"),
    ({"queue": "Bad Queue", "execution": "distributed"}, "invalid queue name"),
    ({"execution": "remote"}, "execution must be 'local' or 'distributed'"),
    ({"map": True}, "a default cannot set: map"),
    ({"bogus": 1}, "a default cannot set: bogus"),
    ([("timeout", 3)], "step_defaults must be a dict"),
])
def test_bad_defaults_fail_at_definition(defaults: Any, match: str) -> None:
    with pytest.raises(DefinitionError, match=match) as exc:
        type("BadDefaults", (Workflow,), {
            "__module__": __name__, "slug": "typed_bad_defaults", "step_defaults": defaults,
            "a": step(lambda self, input: 1),
        })
    assert exc.value.code in ("WF010", "WF001")


class Order(BaseModel):
    """Test fixture Order."""

    sku: str
    qty: int


class OrderIn(BaseModel):
    """Test fixture OrderIn."""

    run: Order


class Priced(BaseModel):
    """Test fixture Priced."""

    sku: str
    total: float


@dataclasses.dataclass
class Line:
    """A map element as a dataclass."""

    sku: str
    qty: int


@dataclasses.dataclass
class LineOut:
    """A map step's output as a dataclass."""

    sku: str
    doubled: int


got: dict[str, Any] = {}
lock = threading.Lock()


class Typed(Workflow):
    """Test fixture Typed."""

    slug = "typed_io"

    @step
    def price(self, input: OrderIn) -> Priced:
        """Step price."""
        got["price"] = input
        return Priced(sku=input.run.sku, total=input.run.qty * 2.5)

    @step
    def lines(self, input: Any) -> list[dict[str, Any]]:
        """Step lines."""
        return [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]

    @step(depends_on=["lines"], map=True)
    def double(self, item: Line) -> LineOut:
        """Step double."""
        with lock:
            got.setdefault("double", []).append(item)
        return LineOut(item.sku, item.qty * 2)

    @step(depends_on=["price"])
    def echo(self, input: dict[str, Any]) -> Priced:
        """Step echo."""
        return input["price"]  # a dict, validated into the model and dumped again


def test_typed_input_is_parsed_and_output_serialised(db_url: str) -> None:
    got.clear()
    with Client(db_url) as c:
        result = execute(Typed, {"sku": "x", "qty": "4"}, client=c, timeout=60)
        outputs = c.get_step_outputs(result.run_id)
    assert isinstance(got["price"], OrderIn) and got["price"].run == Order(sku="x", qty=4)
    assert outputs["price"] == {"sku": "x", "total": 10.0}
    assert outputs["echo"] == {"sku": "x", "total": 10.0}
    assert sorted(got["double"], key=lambda x: x.sku) == [Line("a", 1), Line("b", 2)]
    assert outputs["double"] == [{"sku": "a", "doubled": 2}, {"sku": "b", "doubled": 4}]


def attempts(db_url: str, run_id: UUID) -> list[tuple[str, str, int, str]]:
    with psycopg.connect(db_url) as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            "select step_slug, status, attempts_count, error_message from workflow.tasks"
            " where run_id = %s order by step_slug", [run_id]).fetchall()]


class Strict(Workflow):
    """Test fixture Strict."""

    slug = "typed_strict"

    @step(max_attempts=3, base_delay=0)
    def price(self, input: OrderIn) -> Priced:
        """Step price."""
        return Priced(sku=input.run.sku, total=1)


def test_validation_failure_spends_one_attempt(db_url: str) -> None:
    with Client(db_url) as c, pytest.raises(WorkflowError) as exc:
        execute(Strict, {"sku": "x", "qty": "many"}, client=c, timeout=60)
    run_id = exc.value.run_id  # type: ignore[attr-defined]
    [(slug, status, count, error)] = attempts(db_url, run_id)
    assert (slug, status, count) == ("price", "failed", 1)
    assert "NonRetryableError" in error and "does not fit OrderIn" in error
    assert "qty" in error and "valid integer" in error


class DataStrict(Workflow):
    """Test fixture DataStrict."""

    slug = "typed_data_strict"

    @step(max_attempts=3, base_delay=0)
    def a(self, input: dict[str, Any]) -> list[dict[str, Any]]:
        """Step a."""
        return [{"sku": "a"}]

    @step(depends_on=["a"], map=True, max_attempts=3, base_delay=0)
    def b(self, item: Line) -> int:
        """Step b."""
        return item.qty


def test_dataclass_misfit_spends_one_attempt(db_url: str) -> None:
    with Client(db_url) as c, pytest.raises(WorkflowError) as exc:
        execute(DataStrict, {}, client=c, timeout=60)
    rows = attempts(db_url, exc.value.run_id)  # type: ignore[attr-defined]
    b = [r for r in rows if r[0] == "b"]
    assert [(r[1], r[2]) for r in b] == [("failed", 1)]
    assert "does not fit Line" in b[0][3] and "qty" in b[0][3]


class Opaque(BaseModel):
    """Test fixture Opaque."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    lock: threading.Event


def opaque_handler(self: Any, input: Opaque) -> int:
    return 1


def test_a_model_that_cannot_describe_json_fails_at_definition() -> None:
    with pytest.raises(DefinitionError, match=r"step a: model .*Opaque cannot describe JSON"):
        type("OpaqueFlow", (Workflow,), {"__module__": __name__, "slug": "typed_opaque",
                                         "a": step(opaque_handler)})


class InProcess(Workflow):
    """Context and typed I/O through run_in_process, the database-free helper."""

    slug = "typed_in_process"

    @step
    def lines(self, input: Any) -> list[dict[str, Any]]:
        """Step lines."""
        return [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]

    @step(depends_on=["lines"], map=True)
    async def double(self, item: Line, ctx: StepContext) -> LineOut:
        """Step double."""
        assert ctx.heartbeat() and not ctx.cancelled
        return LineOut(f"{item.sku}{ctx.map_index}", item.qty * 2)


def test_run_in_process_passes_context_and_typed_io() -> None:
    from singularity_workflow.testing import run_in_process

    outputs = run_in_process(InProcess, {})
    assert outputs["double"] == [{"sku": "a0", "doubled": 2}, {"sku": "b1", "doubled": 4}]
