"""Every notebook in ``notebooks/`` runs, offline, against the embedded data.

Each one is executed with nbclient in a fresh ``python3`` kernel of *this* interpreter (a
kernelspec for ``sys.executable`` is written to a temporary ``JUPYTER_PATH``, which takes
precedence over any user-level ``python3`` spec pointing at another Python), with the ``Agg``
matplotlib backend; any cell error fails the test.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name="python3", prefix=str(prefix))  # argv: [sys.executable, "-m", ...]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        mp.setenv("MPLBACKEND", "Agg")
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec("python3")
        assert spec.argv[0] == sys.executable
        yield "python3"


def test_there_are_notebooks() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert names[:3] == [
        "01_quickstart.ipynb",
        "02_custom_pipeline.ipynb",
        "03_fanout_and_inspection.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel_env: str) -> None:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=60,
        kernel_name=kernel_env,
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_saved_with_its_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.execution_count is not None for c in code), "rebuild: notebooks/build.py"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert all(o.output_type != "error" for c in code for o in c.outputs)
    assert sum(len(c.outputs) for c in code) >= len(code) // 2


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS_DIR / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebooks_match_their_builder() -> None:
    """notebooks/build.py is the source of the cells: the saved files must not drift from it."""
    builder = load_builder()
    assert sorted(builder.NOTEBOOKS) == [p.name for p in NOTEBOOKS]
    for name, cells in builder.NOTEBOOKS.items():
        saved = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
        assert [(c.cell_type, c.source) for c in saved.cells] == [
            (c.cell_type, c.source) for c in cells
        ], f"{name} is stale: run notebooks/build.py"


def test_a_timeline_picture_is_saved() -> None:
    pictures = [
        o
        for path in NOTEBOOKS
        for c in nbformat.read(path, as_version=4).cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(pictures) >= 2
