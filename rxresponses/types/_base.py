"""The base class every rxresponses model derives from, and the JSON helpers that go with it.

Two promises shape it:

* **Lenient in, faithful out.** A model parsed off the wire keeps unknown fields (``extra="allow"``)
  and remembers which fields were present, so ``parse -> dump`` gives back the same JSON object.
* **Complete when built in Python.** A model that rxresponses (or a user) constructs in code dumps
  every field, defaults included, so the events we emit carry all the fields the official schema
  requires (``logprobs: []``, ``annotations: []``, ``summary: []``...).

Both are served by one rule: models validated with the :data:`WIRE` context keep the set of fields
they were given; models built any other way mark all their fields as set. Dumps always use
``exclude_unset=True`` (see :func:`to_dict` / :func:`to_json`).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, Final, Self, TypeVar

from pydantic import BaseModel, ConfigDict

from ._compat import make

__all__ = ["WIRE", "WireModel", "buildable_post_init", "set_display_hook", "to_dict", "to_json"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Validation context that marks a model as parsed off the wire (see the module docstring).
WIRE: Final[dict[str, bool]] = {"rxresponses_wire": True}


class WireModel(BaseModel):
    """Base for all rxresponses models: extra fields kept, wire-faithful dumps."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        # Keep validation cheap on the hot path; assignments are trusted.
        validate_assignment=False,
        protected_namespaces=(),
    )

    def model_post_init(self, context: Any, /) -> None:
        if context is None or not context.get("rxresponses_wire"):
            # Built in Python: every declared field counts as set, so it is dumped.
            self.model_fields_set.update(_field_names(type(self)))

    def _repr_html_(self) -> str | None:
        """Jupyter's HTML view (see :mod:`rxresponses.sinks.notebook`)."""
        hook = _DISPLAY_HOOKS.get("html")
        return None if hook is None else hook(self)

    def _repr_markdown_(self) -> str | None:
        """Jupyter's Markdown view (see :mod:`rxresponses.sinks.notebook`)."""
        hook = _DISPLAY_HOOKS.get("markdown")
        return None if hook is None else hook(self)

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Self:
        """Build an instance from ``values`` without validation: the hot-path constructor.

        ``values`` must hold *every* declared field, each already of its declared type (the
        dict is adopted, not copied). rxresponses uses it for the per-token delta events it
        builds itself; the tests hold its dumps equal to validated construction and valid against
        the official schema. Anything else should use the normal constructor.
        """
        names = _FIELD_NAMES.get(cls)
        return make(cls, values, set(names or _field_names(cls)))

    @classmethod
    def build(cls, **values: Any) -> Self:
        """``cls(**values)`` without validation, for values already of their declared types.

        Missing fields take their defaults (a fresh one from each ``default_factory``); the
        result is the model the validating constructor makes from the same values: every field
        counts as set, except a :class:`SparseModel`'s sparse fields left ``None``. rxresponses
        builds the per-stream lifecycle events and items it emits with it (validation cost
        more than the rest of a short stream's conversion); the tests hold its dumps equal to
        validated construction and valid against the official schema. Values are adopted,
        not copied; field names only (no aliases). A class with its own ``model_post_init``
        cannot be built this way (``TypeError``).
        """
        plan = _BUILD_PLANS.get(cls) or _build_plan(cls)
        template, required, factories, dumped, sparse = plan
        if not values.keys() >= required:
            missing = sorted(required - values.keys())
            raise TypeError(f"{cls.__name__}.build() needs {missing}")
        fields = {**template, **values}
        if len(fields) != len(template):
            unknown = sorted(set(values) - set(template))
            raise TypeError(f"{cls.__name__}.build() got unknown fields {unknown}")
        for name, factory in factories:
            if name not in values:
                fields[name] = factory()
        names = set(dumped)
        if sparse:
            for name in values.keys() & sparse:  # a sparse field given: dumped unless None
                if values[name] is None:
                    names.discard(name)
                else:
                    names.add(name)
        return make(cls, fields, names)


#: Jupyter display of every model, by format (``"html"``, ``"markdown"``): late-bound, so the
#: types import nothing from the layers above them. :mod:`rxresponses.sinks.notebook` registers
#: its renderers when it is imported, and ``import rxresponses`` imports it.
_DISPLAY_HOOKS: dict[str, Callable[[BaseModel], str | None]] = {}


def set_display_hook(kind: str, hook: Callable[[BaseModel], str | None]) -> None:
    """Make ``hook`` render every rxresponses model in Jupyter as ``kind`` (``"html"`` or
    ``"markdown"``); it returns ``None`` for the plain repr."""
    if kind not in ("html", "markdown"):
        raise ValueError(f"unknown display kind {kind!r}")
    _DISPLAY_HOOKS[kind] = hook


_BUILDABLE = "_rxresponses_buildable"


def buildable_post_init(method: _F) -> _F:
    """Mark a ``model_post_init`` that only does what :meth:`WireModel.build` does itself
    (mark every field set, then drop the ``_sparse`` ones left ``None``)."""
    setattr(method, _BUILDABLE, True)
    return method


#: (template of the fields in declaration order with their defaults, the required fields,
#: the default factories, the fields dumped when not given, the sparse fields)
_BuildPlan = tuple[
    dict[str, Any],
    frozenset[str],
    tuple[tuple[str, Callable[[], Any]], ...],
    frozenset[str],
    frozenset[str],
]
_BUILD_PLANS: dict[type[BaseModel], _BuildPlan] = {}
_REQUIRED: Any = object()


def _build_plan(cls: type[WireModel]) -> _BuildPlan:
    """What :meth:`WireModel.build` needs to know of ``cls`` (see :data:`_BuildPlan`)."""
    post_init = cls.model_post_init
    if post_init is not WireModel.model_post_init and not getattr(post_init, _BUILDABLE, False):
        raise TypeError(f"{cls.__name__} has its own model_post_init: use {cls.__name__}(...)")
    template: dict[str, Any] = {}
    required: list[str] = []
    factories: list[tuple[str, Callable[[], Any]]] = []
    for name, info in cls.model_fields.items():
        if info.is_required():
            required.append(name)
            template[name] = _REQUIRED
        elif info.default_factory is not None:
            template[name] = None
            factories.append((name, info.default_factory))  # type: ignore[arg-type]
        elif isinstance(info.default, (list, dict, set)):  # pydantic copies these per instance
            template[name] = None
            factories.append((name, functools.partial(copy.deepcopy, info.default)))
        else:
            template[name] = info.default
    sparse = frozenset(getattr(cls, "_sparse", ()))
    # Every field counts as set, but a sparse one left None (its default, when not given).
    made = {name for name, _factory in factories}
    dumped = frozenset(
        n for n in template if not (n in sparse and template[n] is None and n not in made)
    )
    plan = (template, frozenset(required), tuple(factories), dumped, sparse)
    _BUILD_PLANS[cls] = plan
    return plan


_FIELD_NAMES: dict[type[BaseModel], frozenset[str]] = {}


def _field_names(cls: type[BaseModel]) -> frozenset[str]:
    # ``cls.model_fields`` is a property that rebuilds a dict view: cache the names per class.
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(cls.model_fields)
    return names


def to_dict(model: BaseModel) -> dict[str, Any]:
    """Dump a model to a JSON-compatible dict, exactly as rxresponses writes it on the wire."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def to_json(model: BaseModel) -> str:
    """Dump a model to compact JSON text, exactly as rxresponses writes it on the wire."""
    return model.model_dump_json(by_alias=True, exclude_unset=True)
