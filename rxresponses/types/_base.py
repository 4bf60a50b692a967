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

from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict

__all__ = ["WIRE", "WireModel", "to_dict", "to_json"]

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
            self.__pydantic_fields_set__.update(_field_names(type(self)))

    def _repr_html_(self) -> str | None:
        """Jupyter's HTML view (see :mod:`rxresponses.sinks.notebook`)."""
        from ..sinks.notebook import repr_html

        return repr_html(self)

    def _repr_markdown_(self) -> str | None:
        """Jupyter's Markdown view (see :mod:`rxresponses.sinks.notebook`)."""
        from ..sinks.notebook import repr_markdown

        return repr_markdown(self)

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Self:
        """Build an instance from ``values`` without validation: the hot-path constructor.

        ``values`` must hold *every* declared field, each already of its declared type (the
        dict is adopted, not copied). rxresponses uses it for the per-token delta events it
        builds itself; the tests hold its dumps equal to validated construction and valid against
        the official schema. Anything else should use the normal constructor.
        """
        obj = _new(cls)  # ``cls.__new__`` is ``object.__new__``: BaseModel defines none
        _setattr(obj, "__dict__", values)
        names = _FIELD_NAMES.get(cls)
        _setattr(obj, "__pydantic_fields_set__", set(names or _field_names(cls)))
        _setattr(obj, "__pydantic_extra__", {})
        _setattr(obj, "__pydantic_private__", None)
        return obj


# Bound once: trusted() runs for every delta event.
_new = object.__new__
_setattr = object.__setattr__
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
