"""Wildcard model groups: ``model_name: "anthropic/*"`` serves every ``anthropic/...`` model.

LiteLLM lets one ``model_list`` entry stand for a whole family of models::

    - model_name: "anthropic/*"
      litellm_params: {model: "anthropic/*", api_key: os.environ/ANTHROPIC_API_KEY}

A request for ``anthropic/claude-sonnet-4`` then goes to that deployment with
``anthropic/claude-sonnet-4`` as its model. The rules are LiteLLM's:

* each ``*`` of a group name matches any text; the segments it matched replace
  the ``*`` of ``litellm_params.model`` in order (``openai/fo::*:static::*``),
  the last ones when the model has fewer ``*`` than the name
  (``*meta.llama3*`` -> ``bedrock/meta.llama3*``); a model without ``*`` is
  used as written;
* an exact group name (or alias) always wins; among patterns the most specific
  (longest, then most wildcards) wins;
* ``model: "*"`` takes the provider from the request (``anthropic/claude``).

The deployments made for one concrete name keep the wildcard deployment's id,
so cooldowns, load, limits and ownership are the deployment's, whatever model
it served. They are built on the first request for that name and kept in a
bounded table (the names come from callers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace

from providers.base import Provider
from router.config.models import split_model
from router.deployment import Deployment
from router.errors import UnknownModelError

__all__ = ["WildcardGroups", "concrete_model", "matches_pattern", "pattern_regex"]

#: Concrete model names remembered; the oldest is forgotten beyond this.
MAX_NAMES = 1024


class WildcardGroups:
    """The wildcard groups of one deployment table, and the deployments made from them."""

    def __init__(
        self, groups: Mapping[str, tuple[Deployment, ...]], providers: Mapping[str, Provider]
    ) -> None:
        patterns = [name for name in groups if "*" in name]
        patterns.sort(key=lambda p: (len(p), p.count("*")), reverse=True)
        self._patterns = [(pattern_regex(p), p) for p in patterns]
        self._groups = groups
        self._providers = providers
        self._made: dict[str, tuple[str, tuple[Deployment, ...]]] = {}

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def match(self, name: str) -> tuple[str, tuple[Deployment, ...]] | None:
        """``(wildcard group, deployments serving name)``, or ``None`` when no pattern fits."""
        found = self._made.get(name)
        if found is not None:
            return found
        for regex, pattern in self._patterns:
            matched = regex.fullmatch(name)
            if matched is not None:
                found = pattern, tuple(
                    self._specialise(d, name, matched.groups()) for d in self._groups[pattern])
                break
        else:
            return None
        if len(self._made) >= MAX_NAMES:
            del self._made[next(iter(self._made))]
        self._made[name] = found
        return found

    def _specialise(self, d: Deployment, name: str, segments: tuple[str, ...]) -> Deployment:
        params = d.config.litellm_params
        model = concrete_model(params.model, name, segments)
        if model == params.model:
            return d
        provider_name, upstream = split_model(model, params.custom_llm_provider)
        provider = self._providers.get(provider_name)
        if provider is None or not upstream:
            raise UnknownModelError(name, list(self._groups))
        config = d.config.model_copy(
            update={"litellm_params": params.model_copy(update={"model": model})})
        same = provider_name == d.provider_name
        endpoint = d.endpoint if same else provider.prepare(config)
        stateless = getattr(provider, "stateless", None)
        return replace(
            d, provider_name=provider_name, upstream_model=upstream, config=config,
            provider=provider, endpoint=endpoint,
            stateless=bool(stateless(endpoint)) if stateless is not None else False)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The regex of a wildcard group name: each ``*`` captures any text."""
    return re.compile(re.escape(pattern).replace(r"\*", "(.*)"))


def matches_pattern(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` is served by one of the wildcard group names among ``patterns``."""
    return any(pattern_regex(p).fullmatch(name) for p in patterns if "*" in p)


def concrete_model(model: str, name: str, segments: tuple[str, ...]) -> str:
    """``litellm_params.model`` with its ``*`` filled from the request's ``segments``."""
    stars = model.count("*")
    if stars == 0:
        return model
    if model == "*":
        return name
    for segment in segments[-stars:]:
        model = model.replace("*", segment, 1)
    return model
