"""The deployment table: model groups -> deployments, built once.

Construction prepares every deployment with its provider (URLs, headers) and
gives it its stable id; the request path only looks groups up. Two
deployments with the same identity (e.g. two keys on one ``api_base``) get
``-2``, ``-3`` suffixes in config order: stable as long as the config's order
is, and a warning suggests ``model_info.id`` for ids that survive reordering.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from router.deployment import Deployment, deployment_id, resolve_weight
from router.errors import ConfigError, UnknownModelError
from router.wildcards import WildcardGroups

if TYPE_CHECKING:
    from providers.base import Provider
    from router.config.models import DeploymentConfig

__all__ = ["DeploymentTable"]


class DeploymentTable:
    """Immutable after construction: groups, ids, aliases."""

    def __init__(
        self,
        configs: Sequence[DeploymentConfig],
        providers: Mapping[str, Provider],
        aliases: Mapping[str, str] | None = None,
        *,
        default_stream_timeout: float | None = None,
    ) -> None:
        built = [_build(c, i, providers, default_stream_timeout) for i, c in enumerate(configs)]
        self._by_id: dict[str, Deployment] = {}
        groups: dict[str, list[Deployment]] = {}
        for deployment in _dedupe_ids(built):
            self._by_id[deployment.id] = deployment
            groups.setdefault(deployment.model_name, []).append(deployment)
        self._groups = {name: tuple(ds) for name, ds in groups.items()}
        self._aliases = dict(aliases or {})
        self._wildcards = WildcardGroups(self._groups, providers)

    def group(self, name: str) -> tuple[Deployment, ...]:
        """The deployments of group ``name`` (after aliases, then wildcard groups).

        Raises UnknownModelError. Wildcard groups (:mod:`router.wildcards`) are
        consulted only when no exact name or alias matches.
        """
        found = self._groups.get(name)
        if found is None:
            found = self._groups.get(self._aliases.get(name, ""))
            if found is None:
                return self._wildcard(name)[1]
        return found

    def resolve_group(self, name: str) -> str:
        """The real group name behind ``name`` (an alias, a wildcard group, or itself)."""
        if name in self._groups:
            return name
        if name in self._aliases or not self._wildcards:
            return self._aliases.get(name, name)
        matched = self._wildcards.match(name)
        return name if matched is None else matched[0]

    def _wildcard(self, name: str) -> tuple[str, tuple[Deployment, ...]]:
        matched = self._wildcards.match(name) if self._wildcards else None
        if matched is None:
            raise UnknownModelError(name, list(self._groups) + list(self._aliases))
        return matched

    def get(self, deployment_id: str) -> Deployment | None:
        return self._by_id.get(deployment_id)

    def all(self) -> tuple[Deployment, ...]:
        return tuple(self._by_id.values())

    def group_names(self) -> list[str]:
        return list(self._groups)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is a model group, an alias of one, or served by a wildcard group."""
        if name in self._groups or name in self._aliases:
            return True
        return (isinstance(name, str) and bool(self._wildcards)
                and self._wildcards.match(name) is not None)


def _build(
    config: DeploymentConfig,
    index: int,
    providers: Mapping[str, Provider],
    default_stream_timeout: float | None,
) -> Deployment:
    p = config.litellm_params
    provider = providers.get(p.provider)
    if provider is None:
        raise ConfigError(
            f"model_list[{index}].litellm_params.model: unsupported provider {p.provider!r} "
            f"(supported: {', '.join(sorted(providers))})"
        )
    endpoint = provider.prepare(config)
    stateless = getattr(provider, "stateless", None)
    return Deployment(
        id=deployment_id(config),
        model_name=config.model_name,
        provider_name=p.provider,
        upstream_model=p.upstream_model,
        config=config,
        provider=provider,
        endpoint=endpoint,
        weight=resolve_weight(config),
        timeout=p.timeout,
        stream_timeout=p.stream_timeout or default_stream_timeout,
        mock_response=p.mock_response,
        stateless=bool(stateless(endpoint)) if stateless is not None else False,
    )


def _dedupe_ids(deployments: list[Deployment]) -> list[Deployment]:
    seen: dict[str, int] = {}
    out: list[Deployment] = []
    for d in deployments:
        count = seen.get(d.id, 0) + 1
        seen[d.id] = count
        if count == 1:
            out.append(d)
            continue
        if d.config.model_info.id:
            raise ConfigError(f"model_info.id {d.id!r} is used by more than one deployment")
        warnings.warn(
            f"deployments of {d.model_name!r} share an identity (model, api_base, api_version); "
            "ids are numbered in config order; set model_info.id for ids that survive reordering",
            stacklevel=4,
        )
        out.append(_with_id(d, f"{d.id}-{count}"))
    return out


def _with_id(d: Deployment, new_id: str) -> Deployment:
    return replace(d, id=new_id)
