"""One-off calls without a ``model_list``: ``await aresponses(model="anthropic/claude-...")``.

For a script or a notebook, a router is more ceremony than the call: these
functions build a :class:`router.router.Router` with one deployment for the
``"provider/model"`` asked for, make the call and close the router (for a
stream: when it ends or is closed). No state outlives the call, so there is
no module-global client to leak between users; each call pays for its own
connection.

Credentials and endpoints are the keyword arguments LiteLLM takes
(``api_key``, ``api_base``, ``api_version``, ``vertex_project``,
``aws_region_name``, ...); what is not given is read from the environment
variables LiteLLM reads (:data:`ENVIRONMENT`; Chat Completions servers such as
``hosted_vllm/`` and ``azure_ai/`` read theirs in :mod:`providers.chat`, and
Bedrock falls back to the default AWS credential chain). Every other keyword
is a Responses parameter or a router per-request option (``timeout``,
``num_retries``, ...).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from router.config.keys import PARAMS_KEYS
from router.config.models import split_model
from router.router import Router
from router.streaming import ResponseStream, SyncResponseStream
from router.types import Response, RoutingInfo, StreamEvent

__all__ = ["ENVIRONMENT", "OneOffStream", "SyncOneOffStream", "aresponses", "responses"]

#: provider -> ((litellm_params key, environment variables read in order), ...).
ENVIRONMENT: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]] = MappingProxyType({
    "openai": (("api_key", ("OPENAI_API_KEY",)),
               ("api_base", ("OPENAI_BASE_URL", "OPENAI_API_BASE"))),
    "azure": (("api_key", ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY")),
              ("api_base", ("AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT")),
              ("api_version", ("AZURE_API_VERSION", "OPENAI_API_VERSION"))),
    "anthropic": (("api_key", ("ANTHROPIC_API_KEY",)),
                  ("api_base", ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"))),
    "gemini": (("api_key", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
               ("api_base", ("GEMINI_API_BASE",))),
    "vertex_ai": (("vertex_project", ("VERTEXAI_PROJECT", "VERTEX_PROJECT",
                                      "GOOGLE_CLOUD_PROJECT")),
                  ("vertex_location", ("VERTEXAI_LOCATION", "VERTEX_LOCATION")),
                  ("vertex_credentials", ("VERTEXAI_CREDENTIALS",
                                          "GOOGLE_APPLICATION_CREDENTIALS"))),
    "bedrock": (("aws_region_name", ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")),),
})


async def aresponses(
    *, model: str, input: Any = None, stream: bool = False, **kwargs: Any
) -> Any:
    """One Responses call to ``model`` (``"provider/name"``) without a configured router.

    Returns a :class:`router.types.Response`, or with ``stream=True`` a
    :class:`OneOffStream` that closes its router when it ends.
    """
    router = _router(model, kwargs)
    try:
        result = await router.aresponses(model=model, input=input, stream=stream, **kwargs)
    except BaseException:
        await router.aclose()
        raise
    if stream:
        return OneOffStream(result, router)
    await router.aclose()
    return result


def responses(*, model: str, input: Any = None, stream: bool = False, **kwargs: Any) -> Any:
    """Sync twin of :func:`aresponses` (a stream is a :class:`SyncOneOffStream`)."""
    router = _router(model, kwargs)
    try:
        result = router.responses(model=model, input=input, stream=stream, **kwargs)
    except BaseException:
        router.close()
        raise
    if stream:
        return SyncOneOffStream(result, router)
    router.close()
    return result


class _Holding:
    """A stream and the one-off router to close at its end; ``routing`` and
    ``response`` are the stream's."""

    def __init__(self, stream: ResponseStream | SyncResponseStream, router: Router) -> None:
        self._held = stream
        self._router: Router | None = router

    @property
    def routing(self) -> RoutingInfo | None:
        return self._held.routing

    @property
    def response(self) -> Response | None:
        return self._held.response


class OneOffStream(_Holding):
    """A :class:`router.streaming.ResponseStream` that closes its one-off router at its end."""

    def __init__(self, stream: ResponseStream, router: Router) -> None:
        super().__init__(stream, router)
        self._stream = stream

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        try:
            return await self._stream.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        router, self._router = self._router, None
        if router is not None:
            try:
                await self._stream.aclose()
            finally:
                await router.aclose()

    async def __aenter__(self) -> OneOffStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class SyncOneOffStream(_Holding):
    """The sync twin of :class:`OneOffStream`."""

    def __init__(self, stream: SyncResponseStream, router: Router) -> None:
        super().__init__(stream, router)
        self._stream = stream

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        try:
            return next(self._stream)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        router, self._router = self._router, None
        if router is not None:
            try:
                self._stream.close()
            finally:
                router.close()

    def __enter__(self) -> SyncOneOffStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _router(model: str, kwargs: dict[str, Any], environ: Mapping[str, str] | None = None
            ) -> Router:
    """A router with one deployment of ``model``; deployment keywords leave ``kwargs``."""
    params: dict[str, Any] = {"model": model}
    for key in [k for k in kwargs if k in PARAMS_KEYS and k != "model"]:
        params[key] = kwargs.pop(key)
    env = os.environ if environ is None else environ
    provider, _ = split_model(model, params.get("custom_llm_provider"))
    for key, names in ENVIRONMENT.get(provider, ()):
        if params.get(key) is None:
            value = next((env[n] for n in names if env.get(n)), None)
            if value is not None:
                params[key] = value
    return Router([{"model_name": model, "litellm_params": params}])
