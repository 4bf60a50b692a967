"""Every use of pydantic internals in rxresponses, checked at import, with a public-API fallback.

The hot path builds, copies and numbers models without pydantic's validation or ``__setattr__``
dispatch. That needs pydantic's instance layout: a model's state lives in four slots
(``__dict__`` with the declared fields, ``__pydantic_fields_set__``, ``__pydantic_extra__``,
``__pydantic_private__``), set through their descriptors. Nothing outside this module touches
that layout: the rest of rxresponses calls the functions below.

At import, :func:`internals_usable` checks that the layout is still the one relied on (the slot
descriptors exist; a model made the fast way equals the one the validating constructor makes, and
dumps the same; the fast copies equal ``model_copy(deep=True)``; a field written in place reads
back). If any check fails (a pydantic release changed its internals), :data:`FAST` is ``False``
and every function here uses the public API instead: the validating constructor,
:meth:`~pydantic.BaseModel.model_copy`, :func:`copy.deepcopy`, ``setattr``,
:attr:`~pydantic.BaseModel.model_fields_set`. The results are the same; only slower.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "FAST",
    "deep_copy",
    "deep_copy_with",
    "internals_usable",
    "make",
    "replace_value",
    "set_field",
    "shallow_copy",
    "text_maker",
    "use_fast_path",
]

_M = TypeVar("_M", bound=BaseModel)

# -- the internals ---------------------------------------------------------------------------
# Bound once: make() runs for every delta event. The slot descriptors' setters are what
# ``object.__setattr__`` ends up calling, minus the attribute lookup (about a third of the cost
# of building a delta event).

_new = object.__new__
_SLOT_NAMES = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")


def _slot_setter(name: str) -> Callable[[Any, Any], None]:
    descriptor = BaseModel.__dict__.get(name)
    setter = getattr(descriptor, "__set__", None)
    if setter is None:
        return _missing_slot
    return setter  # type: ignore[no-any-return]


def _missing_slot(obj: Any, value: Any) -> None:
    raise AttributeError("pydantic's instance layout changed")


_set_dict, _set_fields_set, _set_extra, _set_private = map(_slot_setter, _SLOT_NAMES)

#: Whether the internals are used (see the module docstring). Set at import by
#: :func:`internals_usable`; :func:`use_fast_path` switches it (for tests).
FAST = False


def _make_fast(cls: type[_M], fields: dict[str, Any], fields_set: set[str]) -> _M:
    obj = _new(cls)  # ``cls.__new__`` is ``object.__new__``: BaseModel defines none
    _set_dict(obj, fields)
    _set_fields_set(obj, fields_set)
    _set_extra(obj, {})
    _set_private(obj, None)
    return obj


def _make_public(cls: type[_M], fields: dict[str, Any], fields_set: set[str]) -> _M:
    return cls(**fields)


def make(cls: type[_M], fields: dict[str, Any], fields_set: set[str]) -> _M:
    """The model ``cls(**fields)`` makes, without validation.

    ``fields`` holds every declared field (by name, no aliases), each of its declared type (the
    dict is adopted, not copied); ``fields_set`` is the set of fields the constructor would mark
    as set (``cls`` has no ``model_post_init`` of its own that does more). The fallback is the
    constructor itself.
    """
    if FAST:
        return _make_fast(cls, fields, fields_set)
    return _make_public(cls, fields, fields_set)


def text_maker(
    cls: type[_M], template: dict[str, Any], text_field: str, fresh_list: str | None
) -> Callable[[str], _M]:
    """A function of one string ``text``: the model ``cls(**fields)`` makes, without validation,
    where ``fields`` is ``template`` with ``text`` in ``text_field`` and, if ``fresh_list`` names
    a field, a new empty list in it. ``template`` holds every declared field of ``cls``, each of
    its declared type, in declared order (it is copied, never changed); every field counts as
    set. The per-token events are built by one of these (the same part's ``delta`` events
    differ only in their text; the check of :data:`FAST` is made here, once)."""
    fields_set = frozenset(template)
    if not FAST:

        def make_public(text: str) -> _M:
            values = template.copy()
            values[text_field] = text
            if fresh_list is not None:
                values[fresh_list] = []
            return _make_public(cls, values, set(fields_set))

        return make_public
    new, set_dict, set_fields_set, set_extra, set_private = (
        _new,
        _set_dict,
        _set_fields_set,
        _set_extra,
        _set_private,
    )
    if fresh_list is None:

        def make_text(text: str) -> _M:
            values = template.copy()
            values[text_field] = text
            obj = new(cls)
            set_dict(obj, values)
            set_fields_set(obj, set(fields_set))
            set_extra(obj, {})
            set_private(obj, None)
            return obj

        return make_text

    def make_text_fresh(text: str) -> _M:
        values = template.copy()
        values[text_field] = text
        values[fresh_list] = []
        obj = new(cls)
        set_dict(obj, values)
        set_fields_set(obj, set(fields_set))
        set_extra(obj, {})
        set_private(obj, None)
        return obj

    return make_text_fresh


# -- copies ----------------------------------------------------------------------------------

_ATOMS = frozenset({str, int, float, bool, type(None)})
_NO_UPDATE: dict[str, Any] = {}


def _deep(value: Any, memo: dict[int, Any]) -> Any:
    """A deep copy of what models hold (models, lists, dicts, scalars), equal to what
    :func:`copy.deepcopy` makes (shared references stay shared, through ``memo``), without its
    generic dispatch: the accumulator copies every item of a response, and deepcopy was the
    biggest per-stream cost. Anything else goes to :func:`copy.deepcopy`. The originals are alive
    throughout (the caller holds the root), so ``id`` keys cannot be reused mid-copy."""
    cls = type(value)
    if cls in _ATOMS:
        return value
    done = memo.get(id(value))
    if done is not None:
        return done
    out: Any
    atoms = _ATOMS
    if cls is list:
        out = memo[id(value)] = []
        out.extend(v if type(v) in atoms else _deep(v, memo) for v in value)
    elif cls is dict:
        out = memo[id(value)] = {}
        for k, v in value.items():
            if type(k) not in atoms:
                k = _deep(k, memo)
            out[k] = v if type(v) in atoms else _deep(v, memo)
    elif (_PLAIN_CLASSES.get(cls) or _plain_class(cls)) and _no_private(value):
        out = _deep_model(value, memo, _NO_UPDATE)
    else:
        return copy.deepcopy(value, memo)
    return out


def _deep_model(value: Any, memo: dict[int, Any], update: dict[str, Any]) -> Any:
    """``value.model_copy(update=update, deep=True)`` for a :func:`_plain` model, field by field
    (what BaseModel.__deepcopy__ does): the fields named in ``update`` (declared fields, never
    extras) are set to its values, not copied, and count as set."""
    out = memo[id(value)] = _new(type(value))
    atoms = _ATOMS
    fields = {}
    for k, v in value.__dict__.items():
        if type(v) not in atoms and k not in update:
            v = _deep(v, memo)
        fields[k] = v
    extra = value.__pydantic_extra__
    if extra:
        extra = _deep(extra, memo)
    elif extra is not None:
        extra = {}
    fields_set = set(value.__pydantic_fields_set__)
    if update:
        fields.update(update)
        fields_set.update(update)
    _set_dict(out, fields)
    _set_extra(out, extra)
    _set_fields_set(out, fields_set)
    _set_private(out, None)
    return out


#: Per class: whether it is a pydantic model that keeps BaseModel's ``__copy__`` and
#: ``__deepcopy__`` (see :func:`_plain`).
_PLAIN_CLASSES: dict[type, bool] = {}


def _plain_class(cls: type) -> bool:
    plain = _PLAIN_CLASSES[cls] = (
        issubclass(cls, BaseModel)
        and cls.__copy__ is BaseModel.__copy__
        and cls.__deepcopy__ is BaseModel.__deepcopy__
    )
    return plain


def _no_private(value: Any) -> bool:
    return getattr(value, "__pydantic_private__", None) is None


def _plain(value: Any) -> bool:
    """Whether ``value`` is copied field by field: a pydantic model whose class keeps
    BaseModel's ``__copy__`` and ``__deepcopy__``, without private attributes."""
    cls = type(value)
    return (_PLAIN_CLASSES.get(cls) or _plain_class(cls)) and _no_private(value)


def deep_copy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy(value, memo)`` (for a model: ``model_copy(deep=True)``); ``memo`` maps
    the ``id`` of an original to the copy to use for it, as :func:`copy.deepcopy`'s does."""
    if memo is None:
        memo = {}
    if FAST:
        return _deep(value, memo)
    return copy.deepcopy(value, memo)


def deep_copy_with(model: _M, update: dict[str, Any]) -> _M:
    """``model.model_copy(update=update, deep=True)``: every field not in ``update`` deep-copied
    (one memo, so shared references stay shared), the fields in ``update`` set to its values
    (not copied) and counted as set."""
    if FAST and _plain(model) and update.keys() <= model.__dict__.keys():
        return _deep_model(model, {}, update)  # type: ignore[no-any-return]
    return model.model_copy(update=update, deep=True)


def shallow_copy(value: Any) -> Any:
    """A shallow copy: ``model_copy()`` for a model (its own field values, extras and set of
    fields, the values in them shared), ``value[:]`` for a list, :func:`copy.copy` otherwise."""
    if type(value) is list:
        return value[:]
    if FAST and _plain(value):
        out = _new(type(value))
        extra = value.__pydantic_extra__
        _set_dict(out, value.__dict__.copy())
        _set_extra(out, None if extra is None else extra.copy())
        _set_fields_set(out, value.__pydantic_fields_set__.copy())
        _set_private(out, None)
        return out
    return copy.copy(value)


# -- writes ----------------------------------------------------------------------------------


def set_field(model: BaseModel, name: str, value: Any) -> None:
    """``setattr(model, name, value)`` for a declared field, which then counts as set, without
    pydantic's ``__setattr__`` dispatch."""
    if FAST:
        model.__dict__[name] = value
        model.__pydantic_fields_set__.add(name)
    else:
        setattr(model, name, value)


def replace_value(model: BaseModel, name: str, value: Any) -> None:
    """Put ``value`` where ``model.name`` is (a declared field or an extra), leaving the set of
    fields set (which decides what is dumped) as it was."""
    if FAST:
        fields = model.__dict__
        extra = model.__pydantic_extra__
        if name in fields:
            fields[name] = value
            return
        if extra is not None and name in extra:
            extra[name] = value
            return
    fields_set = model.model_fields_set
    was_set = name in fields_set
    setattr(model, name, value)
    if not was_set:
        fields_set.discard(name)


# -- the check -------------------------------------------------------------------------------


def use_fast_path(fast: bool) -> bool:
    """Use the internals (``True``, only if :func:`internals_usable`) or the public API
    (``False``); returns the previous setting. For tests and benchmarks."""
    global FAST
    previous = FAST
    FAST = fast and internals_usable()
    return previous


def internals_usable() -> bool:
    """Whether this pydantic's internals are the ones this module relies on (see the module
    docstring): checked on a small model, never raises."""
    try:
        return _check()
    except Exception:
        return False


class _Probe(BaseModel):
    """A model of the shapes rxresponses uses: extras allowed, a default, a default factory,
    a nested model."""

    model_config = ConfigDict(extra="allow")
    name: str
    count: int = 0
    tags: list[str] = []
    inner: _Probe | None = None


def _check() -> bool:
    if any(not hasattr(BaseModel, name) for name in _SLOT_NAMES[1:]):
        return False
    if _missing_slot in (_set_dict, _set_fields_set, _set_extra, _set_private):
        return False
    inner = _Probe(name="in", tags=["x"])
    values = {"name": "a", "count": 2, "tags": ["t"], "inner": inner}
    validated = _Probe.model_validate(values)
    made = _make_fast(_Probe, dict(values), set(values))
    if made != validated or made.model_dump() != validated.model_dump():
        return False
    if made.model_fields_set != validated.model_fields_set or made.model_extra != {}:
        return False
    wire = _Probe.model_validate({"name": "w", "note": [1, {"k": "v"}], "inner": {"name": "i"}})
    copied = _deep(wire, {})
    if copied != wire.model_copy(deep=True) or copied.inner is wire.inner:
        return False
    if copied.model_fields_set != wire.model_fields_set or copied.model_extra != wire.model_extra:
        return False
    extra, wire_extra = copied.model_extra or {}, wire.model_extra or {}
    if extra is wire_extra or extra["note"] is wire_extra["note"]:
        return False
    updated = _deep_model(wire, {}, {"count": 5})
    if updated != wire.model_copy(update={"count": 5}, deep=True):
        return False
    shallow = _new(_Probe)
    _set_dict(shallow, wire.__dict__.copy())
    _set_extra(shallow, dict(wire.__pydantic_extra__ or {}))
    _set_fields_set(shallow, set(wire.__pydantic_fields_set__))
    _set_private(shallow, None)
    if shallow != copy.copy(wire):
        return False
    made.__dict__["count"] = 7
    made.__pydantic_fields_set__.discard("count")
    return made.count == 7 and made.model_dump(exclude_unset=True).get("count") is None


FAST = internals_usable()
