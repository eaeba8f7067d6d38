"""Deployments: the runtime object for one upstream serving one model group.

A :class:`Deployment` is built once from its validated configuration and is
immutable afterwards; the request path only reads it. Its ``id`` is stable
across restarts, replicas and key rotation: ``model_info.id`` when the config
gives one, else a hash of the deployment's non-secret identity. Secrets stay
inside the pydantic ``SecretStr`` of the config and never reach a repr.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from providers.base import Provider
    from router.config.models import DeploymentConfig

__all__ = ["Deployment", "deployment_id"]


def deployment_id(config: DeploymentConfig) -> str:
    """The stable id of a deployment (see the module docstring)."""
    if config.model_info.id:
        return config.model_info.id
    p = config.litellm_params
    identity = [config.model_name, p.provider, p.upstream_model, p.api_base, p.api_version]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
    return digest[:16]


@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """One deployment of a model group, ready to serve.

    ``endpoint`` is whatever its provider prepared once for it (URL, headers);
    ``weight`` is the simple-shuffle weight already resolved from
    ``weight``/``rpm``/``tpm`` (``None``: no weight given); ``stateless``
    is what the provider says of the endpoint (``provider.stateless(endpoint)``,
    false for a provider without that method).
    """

    id: str
    model_name: str
    provider_name: str
    upstream_model: str
    config: DeploymentConfig = field(repr=False)
    provider: Provider = field(repr=False)
    endpoint: Any = field(repr=False)
    weight: float | None = None
    timeout: float | None = None
    stream_timeout: float | None = None
    mock_response: str | None = None
    #: The upstream keeps no conversation state (a provider reached through a codec):
    #: the router keeps it (:mod:`router.conversations`).
    stateless: bool = False

    @property
    def state_domain(self) -> str:
        """Deployments with equal state domains can read each other's responses."""
        declared = self.config.model_info.state_domain
        return declared if declared else self.provider.state_domain(self)

    def __hash__(self) -> int:
        return hash(self.id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deployment) and other.id == self.id


def resolve_weight(config: DeploymentConfig) -> float | None:
    """simple-shuffle's weight: ``weight``, else ``rpm``, else ``tpm``."""
    p = config.litellm_params
    for value in (p.weight, p.rpm, p.tpm):
        if value is not None:
            return float(value)
    return None
