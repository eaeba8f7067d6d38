"""Streams handed to the caller, async and sync.

A :class:`ResponseStream` is returned only once its first event has arrived,
so every retry and failover happens before the caller sees anything. After
that, an upstream failure (an ``error`` event, a cut connection, a malformed
event, a stall past ``stream_timeout``) is raised from the iterator as a
:class:`StreamInterruptedError`, never as a clean end. The stream holds the
request's load slot until it ends, fails or is closed.

A stream the router watches (:class:`router.observe.StreamWatch`: the
deployment has prices, or callbacks/the request log want the outcome) is
costed from its terminal event (``routing.cost``) and reports its outcome
once: at the terminal event, when it breaks, or when closed before its end.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from router.cost import TokenUsage
from router.errors import (
    RouterError,
    StreamInterruptedError,
    UpstreamError,
    error_from_failed_response,
)
from router.types import TERMINAL_EVENTS, Response, RoutingInfo, StreamEvent

if TYPE_CHECKING:
    from router.load import LoadHandle
    from router.observe import StreamWatch
    from router.sync import LoopRunner

__all__ = ["ResponseStream", "SyncResponseStream"]

Observer = Callable[[StreamEvent], Awaitable[None]]


class ResponseStream:
    """Async iterator of :class:`StreamEvent`; also an async context manager.

    ``routing`` says who serves it; ``response`` is the final Response once
    a terminal event has passed (else ``None``). ``observe`` (if any) is
    awaited with the first ``response.created`` event that follows ``first``;
    ``on_end`` (if any) with the final response, before its terminal event is
    returned (the conversation keeper keeps it there).
    """

    def __init__(
        self,
        first: StreamEvent,
        rest: AsyncIterator[StreamEvent],
        handle: LoadHandle,
        observe: Observer | None,
        on_failure: Callable[[UpstreamError], None] | None = None,
        on_end: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        self._pending: StreamEvent | None = first
        self._rest = rest
        self._handle = handle
        self._on_failure = on_failure
        # A stream dropped without aclose() still gives its load slot back when collected.
        self._finalizer = weakref.finalize(self, handle.release, False)
        self._observe: Observer | None = observe
        self._done = False
        self._watch: StreamWatch | None = None
        self._on_end = on_end
        self.routing: RoutingInfo | None = None
        self.response: Response | None = None
        self._note(first)

    def watch(self, watch: StreamWatch) -> None:
        """Have ``watch`` cost the terminal event and report the outcome (router use)."""
        self._watch = watch

    def __aiter__(self) -> ResponseStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._pending is not None:
            event, self._pending = self._pending, None
            return event
        if self._done:
            raise StopAsyncIteration
        try:
            event = await self._rest.__anext__()
        except StopAsyncIteration:
            self._end(ok=self.response is not None)
            if self._watch is not None and self.response is None:
                self._watch.failed(self.routing, _ended_early(self.routing))
            raise
        except RouterError as exc:
            self._end(ok=False)
            if self._on_failure is not None and isinstance(exc, UpstreamError):
                self._on_failure(exc)  # counts toward the deployment's cooldown
            error = self._interrupted(exc)
            if self._watch is not None:
                self._watch.failed(self.routing, error)
            raise error from exc
        except BaseException as exc:
            if self._watch is not None:
                self._watch.failed(self.routing, exc)
            await self._finish(ok=False)
            raise
        observe = self._observe
        if observe is not None and event.raw.get("type") == "response.created":
            self._observe = None
            await observe(event)
        self._note(event)
        if self._on_end is not None and self.response is not None:
            on_end, self._on_end = self._on_end, None
            await on_end(self.response.raw)  # kept before the caller sees the end
        return event

    async def aclose(self) -> None:
        """Stop reading, close the upstream connection, give the load slot back."""
        if self._watch is not None and self.response is None and not self._done:
            self._watch.failed(self.routing, None)  # closed by the caller before its end
        await self._finish(ok=self.response is not None)

    async def __aenter__(self) -> ResponseStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _note(self, event: StreamEvent) -> None:
        if event.raw.get("type") in TERMINAL_EVENTS:
            data = event.raw.get("response") or {}
            usage = TokenUsage.from_usage(data.get("usage"))
            if self._watch is not None and self.routing is not None:
                self.routing = self._watch.completed(self.routing, data, usage)
            self.response = Response(data, self.routing)
            if data.get("status") == "failed":  # as a failed plain response: it counts
                self._handle.release(ok=False)
                if self._on_failure is not None:
                    self._on_failure(error_from_failed_response(
                        data.get("error") or {},
                        model_group=self.routing.model_group if self.routing else None,
                        deployment_id=self.routing.deployment_id if self.routing else None,
                    ))
            else:
                self._handle.release_with(usage)

    def _end(self, *, ok: bool) -> None:
        """The upstream iterator has finished (ended or raised): nothing to close."""
        self._done = True
        self._pending = None
        self._finalizer.detach()
        self._handle.release(ok=ok)

    async def _finish(self, *, ok: bool) -> None:
        """Stop early: close the upstream iterator, even if the caller is cancelled."""
        if self._done:
            return
        self._end(ok=ok)
        closer = getattr(self._rest, "aclose", None)
        if closer is not None:
            await asyncio.shield(closer())

    def _interrupted(self, exc: RouterError) -> StreamInterruptedError:
        error = StreamInterruptedError(
            f"the stream failed after events reached the caller: {exc}",
            model_group=exc.model_group, deployment_id=exc.deployment_id,
        )
        error.trail = self.routing.trail if self.routing else None
        return error


def _ended_early(routing: RoutingInfo | None) -> StreamInterruptedError:
    return StreamInterruptedError(
        "the stream ended without a terminal event",
        model_group=routing.model_group if routing else None,
        deployment_id=routing.deployment_id if routing else None,
    )


class SyncResponseStream:
    """The same stream for sync code, driven on the router's private loop."""

    def __init__(self, stream: ResponseStream, runner: LoopRunner) -> None:
        self._stream = stream
        self._runner = runner

    @property
    def routing(self) -> RoutingInfo | None:
        return self._stream.routing

    @property
    def response(self) -> Response | None:
        return self._stream.response

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        try:
            return self._runner.run(self._stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        self._runner.run(self._stream.aclose())

    def __enter__(self) -> SyncResponseStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
