"""``-i`` imports find workflows in either form, and default slugs do not depend on ``__main__``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from singularity_workflow import DefinitionError
from singularity_workflow.definitions import registry
from singularity_workflow.worker import import_modules, registered_handlers

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

MODULE = '''
from singularity_workflow import Workflow, step


def fetch(input):
    return 1


def save(input):
    return input["fetch"]


class ListForm:
    """The Elixir library's list form: no base class, no slug."""

    __workflow_steps__ = [("fetch", fetch, []), ("save", save, [("depends_on", ["fetch"])])]


class Decorated(Workflow):
    @step
    def only(self, input):
        return 0


if __name__ == "__main__":
    from singularity_workflow import workflow_def

    print(workflow_def(ListForm).slug, workflow_def(Decorated).slug)
'''


@pytest.fixture
def module_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "disc_flows.py").write_text(textwrap.dedent(MODULE))
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("disc_flows", None)
        for slug in ("disc_flows.ListForm", "disc_flows.Decorated"):
            registry.pop(slug, None)


def test_an_imported_module_registers_list_form_classes_and_workflow_subclasses(
    module_dir: Path,
) -> None:
    import_modules(["disc_flows"])
    handlers = registered_handlers()
    assert handlers["disc_flows.ListForm"] == ["fetch", "save"]
    assert handlers["disc_flows.Decorated"] == ["only"]


def test_a_script_run_as_main_gets_the_slugs_a_worker_importing_it_computes(
    module_dir: Path,
) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "python"), str(REPO)]))
    for argv in (["disc_flows.py"], ["-m", "disc_flows"]):
        out = subprocess.run([sys.executable, *argv], cwd=module_dir, env=env,
                             capture_output=True, text=True, check=True).stdout
        assert out.split() == ["disc_flows.ListForm", "disc_flows.Decorated"], argv


def test_a_class_in_an_interactive_main_without_slug_is_a_clear_error() -> None:
    main = sys.modules["__main__"]
    saved = {k: getattr(main, k) for k in ("__spec__", "__file__") if hasattr(main, k)}
    try:
        main.__spec__ = None  # type: ignore[assignment]
        if hasattr(main, "__file__"):
            del main.__file__
        from singularity_workflow import workflow_def

        def only(input: object) -> int:
            return 0

        nameless = type("Nameless", (), {"__module__": "__main__",
                                         "__workflow_steps__": [("only", only, [])]})
        with pytest.raises(DefinitionError) as caught:
            workflow_def(nameless)
        assert caught.value.hint is not None and "slug" in caught.value.hint
    finally:
        for k, v in saved.items():
            setattr(main, k, v)
