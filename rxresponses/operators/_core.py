"""The core every operator is built on: the :class:`Stage` protocol and the one driver.

A *stage* is a plain state machine, one per subscription:

* ``handle(value) -> list | None``: the values one input becomes; ``None`` passes it on unchanged;
* ``finish() -> list``: the input completed; the last values;
* ``fail(exc) -> list | None``: the input failed with ``exc``; what it still emits (what was
  fully framed, or the events that end the stream well-formed). If it is ``ended`` afterwards,
  the stream completes; otherwise the error goes on to the next stage;
* ``ended`` (optional, default ``False``): set once the stage has emitted its last value (the
  splitter's ``StreamFinished``, the assembler's terminal event, ``data: [DONE]``); what follows
  it completes, and later input is ignored; if its ``error`` is set then, the stream ends with
  that error instead (after the values);
* ``start()`` (optional): what it emits on subscribe, before any input (the assembler's
  ``response.created`` when a server must answer before its upstream does);
* ``name`` (optional): the operator, as error messages name it;
* ``handles`` (optional): the set of value types it acts on; the driver passes any other value
  on without calling ``handle`` (the item stages each own a few signal types);
* ``fresh_output`` (optional): what it emits, it built, and nobody else has seen (see
  :class:`Driver`).

Every public operator is the same thin shell, :func:`stage_operator`, over its stage. Shells piped
one after another (``source.pipe(split_by_item(), collect_reasoning(), ...)``) fuse: the
:class:`StagedObservable` a shell returns knows its source and its chain of stages, and the next
shell appends to that chain, so the whole chain runs in **one** subscription to the source,
driven by :class:`Driver` with one set of rules:

* a value goes through the stages left to right, each stage's output feeding the next;
* the source completing (or a stage ending) finishes every stage after it, in order, then the
  subscriber completes;
* the source failing reaches each stage's ``fail`` in order: the first that ends there ends the
  stream well-formed (the stages after it finish); if none does, the subscriber's ``on_error``
  gets the error;
* a stage raising an :class:`~rxresponses.errors.RxResponsesError` (undecodable data, a line too
  long) fails the stream from there, as if the error came from upstream;
* a stage raising anything else is a programming error (a value of the wrong type, a bug in a
  stage of your own): the subscriber's ``on_error`` gets a :class:`~rxresponses.errors.StageError`
  naming the operator and the value, and no stage after it runs again.
  :class:`~rxresponses.errors.PipelineError` (a mis-wired pipeline) goes there unchanged.

A stage of your own is a Stage too: ``stage_operator(MyStage)`` makes it an operator that fuses
with the built-in ones around it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from reactivex import Observable, abc

from ..errors import PipelineError, RxResponsesError, StageError
from ..types._base import WireModel
from ..types.aliases import IdFactory

__all__ = [
    "Driver",
    "Fragments",
    "IdFactory",
    "Stage",
    "StagedObservable",
    "delta_maker",
    "random_ids",
    "stage_operator",
]

_In = TypeVar("_In", contravariant=True)
_Out = TypeVar("_Out", covariant=True)
_T = TypeVar("_T")
_U = TypeVar("_U")


class Stage(Protocol[_In, _Out]):
    """A plain state machine the driver runs (see the module docstring)."""

    def handle(self, value: _In) -> Sequence[_Out] | None:
        """The values ``value`` becomes, or ``None`` to pass it on unchanged."""
        ...

    def finish(self) -> Sequence[_Out]:
        """The input completed: the last values."""
        ...

    def fail(self, exc: Exception) -> Sequence[_Out] | None:
        """The input failed: what to emit still (the error goes on unless the stage ended)."""
        ...


def random_ids(prefix: str) -> str:
    """The default :data:`IdFactory`: ``<prefix>_`` + 24 random hex digits."""
    return f"{prefix}_{secrets.token_hex(12)}"


def _ignore(value: Any) -> None:
    return None


def _name(stage: Any) -> str:
    return str(getattr(stage, "name", None) or type(stage).__name__)


class Driver:
    """Runs a chain of stages for one subscription and delivers to ``observer``.

    :meth:`on_next`, :meth:`on_error` and :meth:`on_completed` are what the source is subscribed
    with. See the module docstring for the rules.
    """

    __slots__ = ("_closed", "_feeds", "_observer", "_stages", "on_next")

    def __init__(self, stages: Sequence[Any], observer: abc.ObserverBase[Any]) -> None:
        self._stages = _fuse(list(stages))
        self._observer = observer
        n = len(self._stages)
        self._closed = [False] * (n + 1)  # stage i's input (n: the subscriber) is closed
        # Per stage, two entries: for values someone may have seen (from the source, or passed
        # on by a stage of the user's own) and for values a built-in stage of this chain has
        # just built (``fresh_output``), which a stage with ``handle_owned`` (the assembler) may
        # change in place before anyone sees them.
        seen: list[Callable[[Any], None]] = [observer.on_next] * (n + 1)
        fresh: list[Callable[[Any], None]] = [observer.on_next] * (n + 1)
        handles: list[frozenset[type] | None] = [getattr(s, "handles", None) for s in self._stages]
        owner_after = False  # a stage at i or after takes owned values
        for i in range(n - 1, -1, -1):
            seen_down = self._router(i + 1, seen, handles)
            fresh_down = self._router(i + 1, fresh, handles) if owner_after else seen_down
            seen[i] = self._feeder(i, seen_down, fresh_down, owned=False)
            owner_after = owner_after or hasattr(self._stages[i], "handle_owned")
            if owner_after:
                fresh[i] = self._feeder(i, seen_down, fresh_down, owned=True)
            else:
                fresh[i] = seen[i]
        self._feeds = seen
        #: Feed one value from the source.
        self.on_next = seen[0]

    @staticmethod
    def _router(
        j: int, feeds: list[Callable[[Any], None]], handles: list[frozenset[type] | None]
    ) -> Callable[[Any], None]:
        """Deliver a value to stage ``j``, or straight to the first stage after it that acts on
        values of its type (a stage with ``handles`` passes the other types on unchanged)."""
        n = len(handles)
        if j == n or handles[j] is None:
            return feeds[j]
        route: dict[type, Callable[[Any], None]] = {}

        def deliver(value: Any) -> None:
            kind = type(value)
            target = route.get(kind)
            if target is None:
                k = j
                while k < n and (known := handles[k]) is not None and kind not in known:
                    k += 1
                target = route[kind] = feeds[k]
            target(value)

        return deliver

    def _feeder(
        self,
        i: int,
        down_seen: Callable[[Any], None],
        down_fresh: Callable[[Any], None],
        *,
        owned: bool,
    ) -> Callable[[Any], None]:
        stage = self._stages[i]
        handle = getattr(stage, "handle_owned", stage.handle) if owned else stage.handle
        closed = self._closed
        may_end = hasattr(stage, "ended")
        passed = down_fresh if owned else down_seen  # a value passed on keeps its provenance
        down = down_fresh if getattr(stage, "fresh_output", False) else down_seen

        def feed(value: Any) -> None:
            if closed[i]:
                return
            try:
                out = handle(value)
            except Exception as exc:
                self._raised(i, value, exc)
                return
            if out is None:
                passed(value)
            else:
                for item in out:
                    down(item)
            if may_end and stage.ended and not closed[i]:
                closed[i] = True
                error = getattr(stage, "error", None)
                if error is None:
                    self._close(i + 1)
                else:  # it ended the stream with an error of the pipeline
                    self._raised(i, value, error)

        return feed

    def start(self) -> None:
        """Subscribed: deliver what stages with a ``start()`` emit before any input."""
        handles: list[frozenset[type] | None] = [getattr(s, "handles", None) for s in self._stages]
        for i, stage in enumerate(self._stages):
            start = getattr(stage, "start", None)
            if start is None or self._closed[i]:
                continue
            try:
                out = start()
            except Exception as exc:
                self._raised(i, None, exc)
                return
            down = self._router(i + 1, self._feeds, handles)
            for item in out:
                down(item)

    def _release(self) -> None:
        """The stream has ended: drop the feeds, which refer back to this driver, so the
        subscription is freed by reference counting rather than by the cyclic GC."""
        self._feeds = []
        self.on_next = _ignore

    def on_error(self, exc: Exception) -> None:
        """The source failed."""
        self._fail(0, exc)

    def on_completed(self) -> None:
        """The source completed."""
        self._close(0)

    def _close(self, i: int) -> None:
        """Stage ``i``'s input completed: finish it, and everything after it."""
        closed = self._closed
        n = len(self._stages)
        while i < n:
            if closed[i] or closed[n]:  # closed, or a stage after it ended the stream
                return
            closed[i] = True
            stage = self._stages[i]
            try:
                out = stage.finish()
            except Exception as exc:
                self._raised(i, None, exc)
                return
            down = self._feeds[i + 1]
            for item in out:
                down(item)
            i += 1
        if not closed[n]:
            closed[n] = True
            self._release()
            self._observer.on_completed()

    def _fail(self, i: int, exc: Exception) -> None:
        """Stage ``i``'s input failed with ``exc``."""
        closed = self._closed
        n = len(self._stages)
        while i < n:
            if closed[i] or closed[n]:  # closed, or a stage after it ended the stream
                return
            closed[i] = True
            stage = self._stages[i]
            try:
                out = stage.fail(exc)
            except Exception as raised:
                self._raised(i, None, raised)
                return
            if out:
                down = self._feeds[i + 1]
                for item in out:
                    down(item)
            if getattr(stage, "ended", False):  # it ended the stream well-formed
                self._close(i + 1)
                return
            i += 1
        if not closed[n]:
            closed[n] = True
            self._release()
            self._observer.on_error(exc)

    def _raised(self, i: int, value: Any, exc: Exception) -> None:
        """Stage ``i`` raised ``exc`` on ``value`` (``None``: while finishing or failing)."""
        closed = self._closed
        if isinstance(exc, RxResponsesError) and not isinstance(exc, PipelineError):
            # A fault of the data (undecodable, too long): the stream fails from here.
            closed[i] = True
            self._fail(i + 1, exc)
            return
        error = (
            exc
            if isinstance(exc, PipelineError)
            else StageError(_name(self._stages[i]), value, exc)
        )
        for j in range(len(closed)):
            closed[j] = True
        self._release()
        self._observer.on_error(error)


def _fuse(stages: list[Any]) -> list[Any]:
    """Let adjacent stages that know each other merge into one (the fast path a stage may offer):
    ``stage.fuse(next_stage)`` returns a stage doing both, or ``None``."""
    out: list[Any] = []
    for stage in stages:
        while out:
            fuse = getattr(out[-1], "fuse", None)
            merged = fuse(stage) if fuse is not None else None
            if merged is None:
                break
            stage = merged
            out.pop()
        out.append(stage)
    return out


class StagedObservable(Observable[_T], Generic[_T]):
    """An Observable that runs a chain of stages over ``source`` in one subscription.

    :func:`stage_operator` shells append to the chain of a StagedObservable they are applied to
    instead of subscribing to it, so adjacent operators fuse.
    """

    def __init__(self, source: Observable[Any], factories: tuple[Callable[[], Any], ...]) -> None:
        super().__init__()
        self.source = source
        self.factories = factories

    def _subscribe_core(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        driver = Driver([factory() for factory in self.factories], observer)
        driver.start()
        return self.source.subscribe(
            driver.on_next, driver.on_error, driver.on_completed, scheduler=scheduler
        )


def stage_operator(
    factory: Callable[[], Stage[_U, _T]],
) -> Callable[[Observable[_U]], Observable[_T]]:
    """The operator that runs a new stage from ``factory`` for each subscription.

    Applied to the result of another such operator, it joins that operator's subscription (see
    :class:`StagedObservable`).
    """

    def _operator(source: Observable[_U]) -> Observable[_T]:
        if isinstance(source, StagedObservable):
            return StagedObservable(source.source, (*source.factories, factory))
        return StagedObservable(source, (factory,))

    return _operator


class Fragments:
    """Streamed text kept for one join at the end.

    A plain list holds a string object and a list slot per delta: ~60 bytes for a one-character
    token, several times the text. Every :data:`_BLOCK` fragments, small ones (under
    :data:`_SMALL` characters on average) are joined into one string, so memory stays about a
    byte per character; large ones are kept as they are, since the same string objects are held
    by the other stages that buffer the stream (a copy would cost more than their overhead).
    Each character is copied at most twice (into its block, and by :meth:`join`): linear work.
    """

    __slots__ = ("_blocks", "_tail")

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._tail: list[str] = []  # never replaced (cleared in place): it may be cached

    def append(self, text: str) -> None:
        tail = self._tail
        tail.append(text)
        if len(tail) >= _BLOCK:
            self._settle()

    def _settle(self) -> None:
        """Move the tail (:data:`_BLOCK` fragments) to the blocks. Code that appends to
        ``_tail`` directly (the accumulator's hot path) calls it when ``append`` would."""
        tail = self._tail
        if sum(map(len, tail)) < _BLOCK * _SMALL:
            self._blocks.append("".join(tail))
        else:
            self._blocks.extend(tail)
        tail.clear()

    def join(self) -> str:
        """All the text so far."""
        if not self._blocks:
            return "".join(self._tail)
        return "".join(self._blocks + self._tail)

    def __bool__(self) -> bool:
        return bool(self._tail) or bool(self._blocks)


#: Fragments joined into one string at a time, when they are small (see :class:`Fragments`).
_BLOCK = 256
_SMALL = 32


def delta_maker(
    event: type[WireModel], append: Callable[[str], None], fields: dict[str, Any]
) -> Callable[[str], Any]:
    """The function a stage builds once per open part: append a fragment to the part's buffer
    and return its delta event. The stage's ``handle()`` calls it for each delta signal, and
    hands it out as the fused pipeline's fast lane (see :mod:`rxresponses.operators._fused`).

    ``fields`` are the event's fields in declared order, ``delta`` among them (its value is
    replaced); the event is built with :meth:`WireModel.trusted`, ``sequence_number`` 0 until
    the assembler numbers it. A ``logprobs`` field gets a new empty list in every event.
    """
    make = event.trusted
    fresh_logprobs = "logprobs" in fields

    def delta(text: str) -> Any:
        append(text)
        values = fields.copy()
        values["delta"] = text
        if fresh_logprobs:
            values["logprobs"] = []
        return make(values)

    return delta
