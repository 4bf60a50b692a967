"""Print pip constraints that pin every core dependency (and the server extra's) to the lowest
version pyproject.toml declares: ``name>=X[,<Y]`` becomes ``name==X``. Used by .ci/run."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

#: The optional extras whose bounds are pinned too (the dev tools keep floating).
EXTRAS = ("server",)

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())[
    "project"
]
requirements = list(project["dependencies"])
for extra in EXTRAS:
    requirements += project["optional-dependencies"][extra]
for requirement in requirements:
    found = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)", requirement)
    if found is None:
        sys.exit(f"no lower bound (>=) in {requirement!r}: every core dependency needs one")
    print(f"{found[1]}=={found[2]}")
