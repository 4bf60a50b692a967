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
  :class:`Driver`);
* ``delta_types`` and ``handle_delta(value)`` (optional): **the fast path**. Most values of a
  long stream are one more fragment of the item the previous value fed (a ``TextDelta``, an
  ``output_text.delta`` event) and become exactly one value. For a value whose type is in
  ``delta_types``, the driver first calls ``handle_delta(value)``, which returns that one value,
  :data:`NOTHING` (it emits none), or ``None``: not on the fast path (a part to open, logprobs),
  and the driver calls ``handle(value)`` as for any other value. ``handle_delta`` must do what
  ``handle`` does with the value, minus the dispatch and lookups ``handle`` needs, and never
  ends the stage. (``handle_delta_owned`` is its ``handle_owned``.)
* ``fuse(next_stage)`` (optional): one stage doing what it and ``next_stage``, its neighbour in
  the chain, do together, or ``None``; the driver merges adjacent stages that know each other
  (``decode_sse | parse_chunks | split_by_item``, ``assemble | final_response``).
* ``items_only`` (optional, default ``False``) and ``emit_items_only()`` (optional): **demand**.
  A stage with ``items_only`` reads, of the Responses events it takes, only whole items
  (``output_item.added`` / ``.done``), lifecycle and ``error`` events, and passes no event on:
  the fused ``assemble() | final_response()``, whose Response takes each item whole from its
  ``output_item.done``. When nothing after a stage reads the events *inside* an item (every
  later stage up to one with ``items_only`` names no event class in its ``handles``, so events
  pass it unseen), the driver calls the stage's ``emit_items_only()`` before the first value:
  from then on it builds no event inside an item, nor the ``output_item.added`` that a reader
  of whole items needs only for the item's place: it sends :class:`ItemPlaced` when an item
  starts (a stage with ``items_only`` takes it) and the item whole at its
  ``output_item.done``; it closes the items it still holds open itself when the stream
  finishes or fails (status ``incomplete``, the text kept), since the events that would let a
  later stage close them are not built. The item stages offer it; a stage of your own reads
  everything unless it says otherwise.

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

The source fuses too: an :class:`IterableSource` (what ``from_bytes()`` over an iterable,
``from_file()`` and ``from_httpx()`` return) is iterated by the driver's subscription itself,
calling the driver for each value, on the scheduler the source would use; so
``from_bytes(pieces).pipe(chat_sse_to_responses(), final_response())`` is one loop.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.observer import AutoDetachObserver
from reactivex.scheduler import CurrentThreadScheduler

from ..errors import PipelineError, RxResponsesError, StageError
from ..types._base import WireModel
from ..types._compat import text_maker
from ..types.aliases import IdFactory
from ..types.registry import event_type
from ..types.signals import ItemFinished, ItemKind, StreamFinished

__all__ = [
    "NOTHING",
    "Driver",
    "Fragments",
    "IdFactory",
    "ItemPlaced",
    "ItemStage",
    "IterableSource",
    "Stage",
    "StagedObservable",
    "delta_maker",
    "fragment_appender",
    "random_ids",
    "stage_chain",
    "stage_operator",
    "text_event_maker",
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


class _Nothing:
    """The type of :data:`NOTHING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


#: What a stage's ``handle_delta`` returns when the value becomes no value at all.
NOTHING: Any = _Nothing()


class ItemPlaced:
    """An item started at ``output_index``: what a stage emitting whole items only sends where
    it would send ``output_item.added`` (see ``emit_items_only()`` in the module docstring), so
    that the reader of whole items orders the items as their ``.added`` events would."""

    __slots__ = ("output_index",)

    def __init__(self, output_index: int) -> None:
        self.output_index = output_index

    def __repr__(self) -> str:
        return f"ItemPlaced({self.output_index})"


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

    __slots__ = ("_closed", "_feeds", "_handles", "_observer", "_owner_after", "_stages", "on_next")

    def __init__(self, stages: Sequence[Any], observer: abc.ObserverBase[Any]) -> None:
        stages = self._stages = _fuse(list(stages))
        _tell_demand(stages)
        self._observer = observer
        n = len(stages)
        self._closed = [False] * (n + 1)  # stage i's input (n: the subscriber) is closed
        self._handles: list[frozenset[type] | None] = [getattr(s, "handles", None) for s in stages]
        # Each stage has up to two feeds, made when first used: one for values someone may have
        # seen (from the source, or passed on by a stage of the user's own) and one for values a
        # built-in stage of this chain has just built (``fresh_output``), which a stage with
        # ``handle_owned`` (the assembler) may change in place before anyone sees them. The
        # second only where such a stage follows (``_owner_after``).
        owner_after = [False] * (n + 1)
        for i in range(n - 1, -1, -1):
            owner_after[i] = owner_after[i + 1] or hasattr(stages[i], "handle_owned")
        self._owner_after = owner_after
        self._feeds: dict[tuple[int, bool], _Feeds] = {}
        #: Feed one value from the source.
        self.on_next = self._feed(0, False)

    def _feed(self, i: int, owned: bool, kind: type | None = None) -> Callable[[Any], None]:
        """Stage ``i``'s feed for values that are fresh (``owned``) or not; for values of type
        ``kind``, when given (a route's), the feed that goes straight to the fast path if the
        stage has one for that type."""
        if i == len(self._stages):
            return self._observer.on_next
        owned = owned and self._owner_after[i]
        feeds = self._feeds.get((i, owned))
        if feeds is None:
            feeds = self._feeds[i, owned] = self._feeder(i, owned=owned)
        feed, feed_delta, deltas = feeds
        return feed_delta if kind in deltas else feed

    def _feeder(self, i: int, *, owned: bool) -> _Feeds:
        """The functions that feed stage ``i`` one value and send what it emits on: any value
        (``feed``), and a value of one of its ``delta_types`` (``feed_delta``: the fast path
        first, without checking the type); and those types."""
        stage = self._stages[i]
        handle = (owned and getattr(stage, "handle_owned", None)) or stage.handle
        closed = self._closed
        may_end = hasattr(stage, "ended")
        # A value passed on keeps its provenance; what the stage emits is fresh if it says so
        # (one route for both when they agree).
        fresh = bool(getattr(stage, "fresh_output", False))
        down = _Route(self, i + 1, fresh)
        passed = down if fresh == owned else _Route(self, i + 1, owned)
        pass_route, pass_resolve = passed.route, passed.resolve
        route, resolve = down.route, down.resolve
        fast: Callable[[Any], Any] = (
            (getattr(stage, "handle_delta_owned", None) if owned else None)
            or getattr(stage, "handle_delta", None)
            or _ignore
        )
        deltas: frozenset[type] = (
            frozenset() if fast is _ignore else getattr(stage, "delta_types", frozenset())
        )

        def feed(value: Any, tried: bool = False) -> None:
            """Feed ``value`` (``tried``: :func:`feed_delta` found it not on the fast path)."""
            if closed[i]:
                return
            one = None
            try:
                if type(value) in deltas and not tried:  # the fast path (module docstring)
                    one = fast(value)
                if one is None:
                    out = handle(value)
            except Exception as exc:
                self._raised(i, value, exc)
                return
            if one is not None:
                if one is not NOTHING:
                    kind = type(one)
                    (route.get(kind) or resolve(kind))(one)
                return
            if out is None:
                kind = type(value)
                (pass_route.get(kind) or pass_resolve(kind))(value)
            else:
                for item in out:
                    kind = type(item)
                    (route.get(kind) or resolve(kind))(item)
            if may_end and stage.ended and not closed[i]:
                closed[i] = True
                error = getattr(stage, "error", None)
                if error is None:
                    self._close(i + 1)
                else:  # it ended the stream with an error of the pipeline
                    self._raised(i, value, error)

        if not deltas:  # no fast path: every value takes feed()
            return feed, feed, deltas

        def feed_delta(value: Any) -> None:
            """:func:`feed` for a value whose type is in ``deltas`` (a route knows its type)."""
            if closed[i]:
                return
            try:
                one = fast(value)
            except Exception as exc:
                self._raised(i, value, exc)
                return
            if one is None:  # not on the fast path: handle() takes it
                feed(value, True)
            elif one is not NOTHING:
                kind = type(one)
                (route.get(kind) or resolve(kind))(one)

        return feed, feed_delta, deltas

    def start(self) -> bool:
        """Subscribed: deliver what stages with a ``start()`` emit before any input. Returns
        whether any stage emitted a value (or raised)."""
        emitted = False
        for i, stage in enumerate(self._stages):
            start = getattr(stage, "start", None)
            if start is None or self._closed[i]:
                continue
            try:
                out = start()
            except Exception as exc:
                self._raised(i, None, exc)
                return True
            if out:
                emitted = True
                down = _Route(self, i + 1, False)
                for item in out:
                    down.resolve(type(item))(item)
        return emitted

    def _release(self) -> None:
        """The stream has ended: drop the feeds, which refer back to this driver, so the
        subscription is freed by reference counting rather than by the cyclic GC."""
        self._feeds = {}
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
            down = self._feed(i + 1, bool(getattr(stage, "fresh_output", False)))
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
                down = self._feed(i + 1, bool(getattr(stage, "fresh_output", False)))
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


#: A stage's feeds (see :meth:`Driver._feeder`): ``feed``, ``feed_delta``, ``delta_types``.
_Feeds = tuple[Callable[..., None], Callable[[Any], None], frozenset[type]]


class _Route:
    """Where values go after stage ``j - 1``: stage ``j``, or straight to the first stage after
    it that acts on values of their type (a stage with ``handles`` passes the other types on
    unchanged), through its feed for fresh (``owned``) values or not. ``route`` caches the feed
    per type; ``resolve`` finds and caches it."""

    __slots__ = ("_driver", "_j", "_owned", "route")

    def __init__(self, driver: Driver, j: int, owned: bool) -> None:
        self._driver = driver
        self._j = j
        self._owned = owned
        self.route: dict[type, Callable[[Any], None]] = {}

    def resolve(self, kind: type) -> Callable[[Any], None]:
        handles = self._driver._handles
        k, n = self._j, len(handles)
        while k < n and (known := handles[k]) is not None and kind not in known:
            k += 1
        target = self.route[kind] = self._driver._feed(k, self._owned, kind)
        return target


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


def _tell_demand(stages: Sequence[Any]) -> None:
    """Call ``emit_items_only()`` on each stage after which nobody reads the events inside an
    item (see the module docstring): walking back from the subscriber (who reads everything),
    a stage with ``items_only`` reads only whole items; one whose ``handles`` names no event
    class lets events pass unseen, so what is read after it is read after the stage before it;
    any other stage may read every event."""
    inside_read = True  # whether what the current stage emits reaches a reader of inner events
    for stage in reversed(stages):
        if not inside_read:
            emit_items_only = getattr(stage, "emit_items_only", None)
            if emit_items_only is not None:
                emit_items_only()
        if getattr(stage, "items_only", False):
            inside_read = False
            continue
        handles = getattr(stage, "handles", None)
        if handles is None or _names_an_event(handles):
            inside_read = True


def _names_an_event(handles: frozenset[type]) -> bool:
    """Whether ``handles`` names an event class (memoized: a stage's ``handles`` is one of a
    few sets, and ``issubclass`` on pydantic's metaclass costs more than the rest of
    :func:`_tell_demand`)."""
    names = _NAMES_AN_EVENT.get(handles)
    if names is None:
        names = _NAMES_AN_EVENT[handles] = any(issubclass(kind, WireModel) for kind in handles)
    return names


#: ``handles`` set -> whether it names an event class (see :func:`_names_an_event`).
_NAMES_AN_EVENT: dict[frozenset[type], bool] = {}


class _Flag:
    """A disposable that only raises a flag, read between items (a plain attribute: setting it
    from another thread is atomic; a ``threading.Event`` cost more than a short stream's
    iteration)."""

    __slots__ = ("raised",)

    def __init__(self) -> None:
        self.raised = False

    def dispose(self) -> None:
        self.raised = True


class _Piped(Observable[_T], Generic[_T]):
    """An Observable whose :meth:`pipe` applies the operators one after the other, as
    ``reactivex.pipe`` does, without first composing them into one function (which cost more
    than the rest of building a short stream's pipeline)."""

    def pipe(self, *operators: Callable[[Any], Any]) -> Any:
        """Apply ``operators`` to this Observable, in order (:meth:`Observable.pipe`)."""
        source: Any = self
        for operator in operators:
            source = operator(source)
        return source


class IterableSource(_Piped[_T], Generic[_T]):
    """An Observable that iterates ``factory()`` on subscription, on the thread that subscribes
    (the current thread's trampoline) unless a scheduler is given, and closes the iterator when
    done or disposed. A :class:`StagedObservable` over it iterates it itself: no Rx observer
    sits between the loop and the driver."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        super().__init__()
        self.factory = factory

    def _subscribe_core(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return self.run_into(observer, scheduler)

    def run_into(self, observer: Any, scheduler: abc.SchedulerBase | None) -> abc.DisposableBase:
        """Schedule the loop that feeds ``observer`` (``on_next``, ``on_error``,
        ``on_completed``); return what disposes it."""
        disposed = _Flag()

        def run(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
            self.drain(observer, disposed)

        sched = scheduler or CurrentThreadScheduler.singleton()
        return CompositeDisposable(sched.schedule(run), disposed)

    def drain(self, observer: Any, disposed: _Flag) -> None:
        """The loop: iterate ``factory()`` into ``observer`` until it ends or ``disposed`` is
        raised, then close the iterator."""
        try:
            iterator = self.factory()
        except Exception as exc:
            observer.on_error(exc)
            return
        on_next = observer.on_next
        try:
            for item in iterator:
                if disposed.raised:
                    return
                on_next(item)
        except Exception as exc:
            if not disposed.raised:
                observer.on_error(exc)
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        if not disposed.raised:
            observer.on_completed()


class StagedObservable(_Piped[_T], Generic[_T]):
    """An Observable that runs a chain of stages over ``source`` in one subscription.

    :func:`stage_operator` shells append to the chain of a StagedObservable they are applied to
    instead of subscribing to it, so adjacent operators fuse; an :class:`IterableSource` is
    iterated by the subscription itself.
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
        source = self.source
        if type(source) is IterableSource:
            return source.run_into(driver, scheduler)
        return source.subscribe(
            driver.on_next, driver.on_error, driver.on_completed, scheduler=scheduler
        )

    def subscribe(
        self,
        on_next: abc.ObserverBase[_T] | abc.OnNext[_T] | None = None,
        on_error: abc.OnError | None = None,
        on_completed: abc.OnCompleted | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        """:meth:`Observable.subscribe`, with one scheduled action instead of two where the
        source is an :class:`IterableSource` iterated on this thread and nothing else runs on
        its trampoline yet (a short stream paid more for Rx's scheduling than for its last
        stages).

        Rx schedules the subscription on the current thread's trampoline, and the source
        schedules its loop behind it, so that the subscription is set up before any value
        flows and whatever the callbacks schedule on this thread runs after the loop. Here
        both run in one action on that trampoline: the loop right after the driver is set up,
        unless stages emitted values on subscribe (``start()``), whose callbacks may have
        scheduled work that must come first: then the loop is scheduled behind it, as Rx does.
        """
        source = self.source
        if scheduler is None and type(source) is IterableSource:
            current = CurrentThreadScheduler.singleton()
            if current.schedule_required():
                return self._run_on(current, source, on_next, on_error, on_completed)
        return super().subscribe(on_next, on_error, on_completed, scheduler=scheduler)

    def _run_on(
        self,
        current: CurrentThreadScheduler,
        source: IterableSource[Any],
        on_next: Any,
        on_error: abc.OnError | None,
        on_completed: abc.OnCompleted | None,
    ) -> abc.DisposableBase:
        # An observer (any ObserverBase has on_next), or the callbacks. (isinstance() with the
        # ABC cost more than this whole check.)
        if callable(getattr(on_next, "on_next", None)):
            on_next, on_error, on_completed = (
                on_next.on_next,
                on_next.on_error,
                on_next.on_completed,
            )
        observer: AutoDetachObserver[_T] = AutoDetachObserver(on_next, on_error, on_completed)
        disposed = _Flag()
        observer.subscription = disposed  # the observer stops the loop when it ends

        def run(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
            try:
                driver = Driver([factory() for factory in self.factories], observer)
                emitted = driver.start()
            except Exception as exc:
                if not observer.fail(exc):
                    raise
                return
            if disposed.raised:  # it ended on subscribe: the source is never iterated
                return
            if emitted:
                current.schedule(lambda _s, _t: source.drain(driver, disposed))
            else:
                source.drain(driver, disposed)

        current.schedule(run)
        return Disposable(observer.dispose)


def stage_operator(
    factory: Callable[[], Stage[_U, _T]],
) -> Callable[[Observable[_U]], Observable[_T]]:
    """The operator that runs a new stage from ``factory`` for each subscription.

    Applied to the result of another such operator, it joins that operator's subscription (see
    :class:`StagedObservable`).
    """
    return stage_chain(factory)


def stage_chain(*factories: Callable[[], Any]) -> Callable[[Observable[Any]], Observable[Any]]:
    """The operator that runs the stages of ``factories``, in order, in one subscription: what
    piping their :func:`stage_operator` shells one after another makes, as one shell."""

    def _operator(source: Observable[Any]) -> Observable[Any]:
        if isinstance(source, StagedObservable):
            return StagedObservable(source.source, (*source.factories, *factories))
        return StagedObservable(source, factories)

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


def text_event_maker(event: type[WireModel], fields: dict[str, Any]) -> Callable[[str], Any]:
    """The function a stage builds once per open part: the part's delta event for a fragment.

    ``fields`` are the event's fields other than ``type``, ``sequence_number`` and ``delta``;
    ``type`` is the class's own (:func:`~rxresponses.types.registry.event_type`, resolved here,
    once per part), ``sequence_number`` 0 until the assembler numbers it. The event is built the
    way :meth:`WireModel.trusted` builds it, its fields in declared order. A ``logprobs`` field
    gets a new empty list in every event.
    """
    given = {**fields, "type": event_type(event), "sequence_number": 0, "delta": ""}
    names = event.model_fields.keys()
    if given.keys() != names:
        raise TypeError(f"delta_maker({event.__name__}) got {sorted(given)}, not {sorted(names)}")
    template = {name: given[name] for name in names}  # in declared order
    # what WireModel.trusted() does, bound once
    return text_maker(event, template, "delta", "logprobs" if "logprobs" in template else None)


def fragment_appender(fragments: Fragments) -> Callable[[str], Any]:
    """What :func:`delta_maker` makes, for a stage that emits whole items only (see
    ``emit_items_only()`` in the module docstring): append a fragment to ``fragments``; build no
    event (return :data:`NOTHING`)."""
    tail, settle = fragments._tail, fragments._settle  # Fragments.append(), inlined

    def append(text: str) -> Any:
        tail.append(text)
        if len(tail) >= _BLOCK:
            settle()
        return NOTHING

    return append


class ItemStage:
    """The part of demand the item stages (text, reasoning, function calls) share: a subclass
    sets ``kind`` and ``handles`` and keeps the items it holds open in ``_items`` (item id ->
    its state, with the item's ``output_index``); it reads ``_events`` to know whether to build
    the events inside an item.

    After :meth:`emit_items_only` (see the module docstring) it acts on
    :class:`~rxresponses.types.signals.StreamFinished` too, and closes what it still holds when
    the stream finishes or fails, as cut short, since the events that would let a later stage
    close those items are not built."""

    kind: ClassVar[ItemKind]
    handles: frozenset[type]
    #: ``handles``, plus the end of the stream (set for each subclass).
    _handles_items_only: ClassVar[frozenset[type]]
    _items: dict[str, Any]
    #: Whether it builds the events inside an item (False after :meth:`emit_items_only`).
    _events = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handles_items_only = cls.handles | {StreamFinished}

    def emit_items_only(self) -> None:
        """Nobody after this stage reads the events inside an item (the driver says so): emit
        each item whole at its ``output_item.done``, only its place (:class:`ItemPlaced`) when
        it starts, and close the items still open when the stream ends (status
        ``incomplete``, the text kept)."""
        self._events = False
        self.handles = self._handles_items_only

    def handle(self, value: Any) -> list[Any] | None:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def finish(self) -> list[Any]:
        return [] if self._events else self._close_open()

    def fail(self, exc: Exception) -> list[Any] | None:
        return None if self._events else self._close_open()

    def _close_open(self) -> list[Any]:
        """What the items still open become when they are closed as cut short, in the order
        they were opened (emitting whole items only)."""
        out: list[Any] = []
        for item_id, item in list(self._items.items()):
            finished = ItemFinished(self.kind, item_id, item.output_index, "incomplete")
            out += self.handle(finished) or ()
        return out


def delta_maker(
    event: type[WireModel], fragments: Fragments, fields: dict[str, Any]
) -> Callable[[str], Any]:
    """The function a stage builds once per open part: append a fragment to the part's
    ``fragments`` and return its delta event (:func:`text_event_maker`). The stage's
    ``handle()`` and ``handle_delta()`` call it for each delta signal.
    """
    make = text_event_maker(event, fields)
    tail, settle = fragments._tail, fragments._settle  # Fragments.append(), inlined

    def delta(text: str) -> Any:
        tail.append(text)
        if len(tail) >= _BLOCK:
            settle()
        return make(text)

    return delta
