"""AWS Bedrock (``bedrock/``): where to send Converse calls, how to sign them, how to read streams.

The translation itself is :mod:`providers.bedrock_codec`; this module adds
what is Bedrock's own on the wire, with botocore (the ``[bedrock]`` extra)
doing what it does best:

* the endpoint: ``https://bedrock-runtime.{region}.amazonaws.com``, or
  ``aws_bedrock_runtime_endpoint`` (else ``api_base``) when given;
* credentials: ``aws_access_key_id`` / ``aws_secret_access_key`` /
  ``aws_session_token`` from the config, else botocore's default chain
  (environment, shared profile or ``aws_profile_name``, SSO, container and
  instance roles), resolved
  once when the router is built; botocore refreshes temporary credentials
  when they near their expiry (in a worker thread: its refresh blocks);
* SigV4: every request is signed by botocore over the exact bytes and
  headers sent (service ``bedrock``), so a body changed after signing is
  refused by AWS;
* streams: ConverseStream answers in AWS event-stream framing (binary
  messages with headers and CRCs), decoded by botocore's parser into
  ``{event name: payload}``; ``exception`` frames become
  ``{exception name: payload}``, which the codec turns into stream errors;
* errors: the exception name comes in the ``x-amzn-errortype`` header, so
  :meth:`BedrockProvider.error_body` adds it to the body as ``__type``.

The region is ``aws_region_name``, else ``AWS_REGION_NAME``, ``AWS_REGION``,
``AWS_DEFAULT_REGION``, the profile's region, else ``us-west-2`` (LiteLLM's
default).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from providers.aws_eventstream import EventStreamDecoder
from providers.bedrock_codec import BedrockCodec
from providers.http import Answer, origin_of
from providers.sigv4 import SigV4Signer
from providers.translated import Target, TranslatedProvider
from router.errors import ConfigError, InvalidRequestError, MalformedResponseError
from router.types import parse_json

if TYPE_CHECKING:
    from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
    from botocore.session import Session

    from router.config import DeploymentConfig
    from router.deployment import Deployment

__all__ = ["BedrockProvider", "BedrockTarget"]

Json = dict[str, Any]

#: The name AWS signs Bedrock runtime requests for.
SIGNING_NAME = "bedrock"
DEFAULT_REGION = "us-west-2"
_REGION_VARIABLES = ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")


@dataclass(frozen=True, slots=True)
class BedrockTarget(Target):
    """A Bedrock deployment's endpoint, region and (refreshable) credentials."""

    region: str = DEFAULT_REGION
    credentials: Credentials | None = field(default=None, repr=False)
    signer: SigV4Signer = field(
        default_factory=lambda: SigV4Signer(DEFAULT_REGION, SIGNING_NAME), repr=False)
    #: the credentials frozen once when they never change (static keys: botocore's
    #: ``Credentials``, which cannot refresh); ``None`` for refreshable ones
    static: ReadOnlyCredentials | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        Target.__post_init__(self)
        credentials = self.credentials
        static = None
        if credentials is not None and getattr(credentials, "refresh_needed", None) is None:
            static = credentials.get_frozen_credentials()
        object.__setattr__(self, "static", static)

    def __repr__(self) -> str:
        return f"BedrockTarget({self.base_url!r}, region={self.region!r})"


class BedrockProvider(TranslatedProvider):
    """The ``bedrock/`` provider: Converse and ConverseStream, signed with SigV4."""

    name = "bedrock"
    codec = BedrockCodec()

    def prepare(self, config: DeploymentConfig) -> BedrockTarget:
        _require_botocore(config)
        p = config.litellm_params
        region = _region(config)
        base = (p.aws_bedrock_runtime_endpoint or p.api_base
                or os.environ.get("AWS_BEDROCK_RUNTIME_ENDPOINT")
                or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
        if p.extra_query:
            # Converse reads none, and a query's encoding would have to survive the
            # sender unchanged for the signature to hold.
            raise ConfigError(f"model_list ({config.model_name!r}).litellm_params.extra_query: "
                              "Bedrock's Converse takes no query parameters")
        headers = {"content-type": "application/json", **(p.extra_headers or {})}
        return BedrockTarget(
            base_url=base, origin=origin_of(base), headers=headers,
            state_domain=f"bedrock:{origin_of(base)}",
            drop_params=p.drop_params, region=region, credentials=_credentials(config),
            signer=SigV4Signer(region, SIGNING_NAME),
        )

    def authorize_now(
        self, deployment: Deployment, method: str, url: str, headers: dict[str, str],
        body: bytes,
    ) -> Mapping[str, str] | None:
        """``headers`` plus SigV4's ``X-Amz-Date``, ``Authorization`` (and session token);
        ``None`` when the credentials must be refreshed first (:meth:`authorize`)."""
        target: BedrockTarget = deployment.endpoint
        assert target.credentials is not None  # prepare() guarantees it
        if "?" in url:
            raise InvalidRequestError(
                "extra_query: Bedrock's Converse takes no query parameters",
                model_group=deployment.model_name, deployment_id=deployment.id)
        frozen = target.static
        if frozen is None:  # refreshable: botocore's RefreshableCredentials and kin
            credentials: RefreshableCredentials = target.credentials  # type: ignore[assignment]
            if credentials.refresh_needed():
                return None
            frozen = credentials.get_frozen_credentials()
        return _signed(target, url, headers, body, frozen)

    async def authorize(
        self, deployment: Deployment, method: str, url: str, headers: dict[str, str],
        body: bytes,
    ) -> Mapping[str, str]:
        """As :meth:`authorize_now`, the credentials refreshed first (in a worker thread)."""
        target: BedrockTarget = deployment.endpoint
        assert target.credentials is not None  # prepare() guarantees it
        frozen = await _refreshed(target.credentials)
        return _signed(target, url, headers, body, frozen)

    def frames(self, answer: Answer, deployment: Deployment) -> AsyncGenerator[Json, None]:
        return _event_stream(answer, deployment)

    def error_body(self, answer: Answer) -> Any:
        body = TranslatedProvider.error_body(self, answer)
        kind = answer.headers.get("x-amzn-errortype")
        if not kind:
            return body
        if not isinstance(body, dict):
            body = {"message": body}
        body.setdefault("__type", kind)
        return body


def _signed(target: BedrockTarget, url: str, headers: Mapping[str, str], body: bytes,
            frozen: ReadOnlyCredentials) -> Mapping[str, str]:
    return target.signer.sign(url, headers, body, access_key=frozen.access_key or "",
                              secret_key=frozen.secret_key or "", token=frozen.token)


async def _refreshed(credentials: Credentials) -> ReadOnlyCredentials:
    """Temporary credentials (a role, SSO, instance metadata) near their expiry, refreshed.

    botocore refreshes them with blocking calls; that runs in a worker thread
    so the event loop keeps serving other requests.
    """
    return await asyncio.to_thread(credentials.get_frozen_credentials)


# -- configuration ------------------------------------------------------------------------


def _require_botocore(config: DeploymentConfig) -> None:
    try:
        import botocore  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"model_list ({config.model_name!r}): bedrock/ deployments need botocore; "
            "install the extra: pip install 'responses-router[bedrock]'") from None


def _region(config: DeploymentConfig) -> str:
    given = config.litellm_params.aws_region_name
    if given:
        return given
    for name in _REGION_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    profile_region: str | None = _session(config).get_config_variable("region")
    return profile_region or DEFAULT_REGION


def _session(config: DeploymentConfig) -> Session:
    """A botocore session for the deployment's ``aws_profile_name`` (else the default one)."""
    from botocore.exceptions import ProfileNotFound
    from botocore.session import Session

    profile = config.litellm_params.aws_profile_name
    try:
        session = Session(profile=profile)
        session.get_scoped_config()  # an unknown profile fails here, not at the first call
    except ProfileNotFound:
        raise ConfigError(
            f"model_list ({config.model_name!r}).litellm_params.aws_profile_name: no AWS "
            f"profile named {profile!r} in the shared config or credentials files") from None
    return session


def _credentials(config: DeploymentConfig) -> Credentials:
    from botocore.credentials import Credentials

    p = config.litellm_params
    where = f"model_list ({config.model_name!r}).litellm_params"
    if p.aws_access_key_id or p.aws_secret_access_key:
        if not (p.aws_access_key_id and p.aws_secret_access_key):
            raise ConfigError(f"{where}: aws_access_key_id and aws_secret_access_key "
                              "go together; give both, or neither for the default chain")
        token = p.aws_session_token.get_secret_value() if p.aws_session_token else None
        return Credentials(p.aws_access_key_id.get_secret_value(),
                           p.aws_secret_access_key.get_secret_value(), token)
    found: Credentials | None = _session(config).get_credentials()
    if found is None:
        raise ConfigError(
            f"{where}: no AWS credentials for this bedrock/ deployment; give "
            "aws_access_key_id and aws_secret_access_key, or set up the default AWS "
            "credential chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, a role)")
    return found


# -- streams ------------------------------------------------------------------------------


async def _event_stream(answer: Answer, deployment: Deployment) -> AsyncGenerator[Json, None]:
    """The answer's AWS event-stream messages as ``{name: payload}``, in order.

    A message cut between two chunks waits for the next; a broken one (bad
    CRC, impossible lengths) ends the stream as a malformed answer, after the
    whole messages before it.
    """
    decoder = EventStreamDecoder()
    async for chunk in answer.aiter_bytes():
        for headers, payload in decoder.feed(chunk):
            yield _frame(headers, payload, deployment)
        if decoder.error is not None:
            raise MalformedResponseError(
                f"upstream sent a broken AWS event-stream frame: {decoder.error}",
                model_group=deployment.model_name, deployment_id=deployment.id)


def _frame(headers: Mapping[str, Any], payload: bytes, deployment: Deployment) -> Json:
    kind = headers.get(":message-type")
    if kind == "error":
        return {":error": {"code": headers.get(":error-code"),
                           "message": headers.get(":error-message")}}
    name = headers.get(":event-type" if kind == "event" else ":exception-type")
    try:
        data = parse_json(payload) if payload else {}
    except ValueError:
        data = None
    if not isinstance(name, str) or not isinstance(data, dict):
        raise MalformedResponseError(
            f"upstream sent an event-stream {kind or 'message'} without a name or a JSON "
            "object payload", model_group=deployment.model_name, deployment_id=deployment.id)
    return {name: data}
