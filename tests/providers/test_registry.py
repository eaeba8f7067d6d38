"""The provider registration path (providers/registry.py): built-ins listed once,
third-party providers passed to the router by config prefix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from providers.http import ClientPool
from providers.mock import MockProvider
from providers.registry import BUILTIN_PROVIDERS, provider_names, provider_set
from router.config.keys import SUPPORTED_PROVIDERS
from router.deployment import Deployment
from router.errors import ConfigError
from router.request import RouteRequest
from router.router import Router
from router.types import Response


class EchoProvider(MockProvider):
    """A third-party provider: the mock's answers, with its own name and a marker."""

    name = "echo"

    def __init__(self, pool: ClientPool | None = None) -> None:
        super().__init__(pool)
        self.pool = pool
        self.created = 0

    async def create(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> Response:
        self.created += 1
        return await super().create(deployment, request, timeout)


def _echo_list() -> list[dict[str, Any]]:
    return [{"model_name": "g", "litellm_params": {"model": "echo/any"},
             "model_info": {"id": "e"}}]


def test_the_config_accepts_exactly_the_registered_prefixes() -> None:
    assert tuple(BUILTIN_PROVIDERS) == SUPPORTED_PROVIDERS
    assert provider_names({"echo": EchoProvider}) == (*BUILTIN_PROVIDERS, "echo")


async def test_every_builtin_is_built_with_the_routers_pool() -> None:
    pool = ClientPool()
    built = provider_set(pool, {"echo": EchoProvider})
    assert set(built) == {*BUILTIN_PROVIDERS, "echo"}
    assert {name: p.name for name, p in built.items() if name != "echo"} == {
        name: name for name in BUILTIN_PROVIDERS}
    echo = built["echo"]
    assert isinstance(echo, EchoProvider) and echo.pool is pool
    await pool.aclose()


async def test_a_third_party_provider_serves_its_prefix() -> None:
    made: list[EchoProvider] = []

    def factory(pool: ClientPool) -> EchoProvider:
        made.append(EchoProvider(pool))
        return made[-1]

    async with Router(_echo_list(), providers={"echo": factory}) as router:
        response = await router.aresponses(model="g", input="hi")
    assert response.routing is not None
    assert response.routing.provider == "echo"
    assert made[0].created == 1


def test_an_unregistered_prefix_is_a_config_error_naming_the_path() -> None:
    with pytest.raises(ConfigError) as caught:
        Router(_echo_list())
    text = str(caught.value) + " ".join(caught.value.problems)
    assert "model_list[0].litellm_params.model" in text
    assert "unsupported provider 'echo'" in text


def test_from_config_and_from_dict_accept_third_party_prefixes(tmp_path: Path) -> None:
    document = {"model_list": _echo_list()}
    router = Router.from_dict(document, providers={"echo": EchoProvider})
    assert [d.provider_name for d in router.deployments()] == ["echo"]
    path = tmp_path / "config.json"
    path.write_text('{"model_list": [{"model_name": "g", "litellm_params": '
                    '{"model": "any", "custom_llm_provider": "echo"}}]}')
    loaded = Router.from_config(path, providers={"echo": EchoProvider})
    assert [d.provider_name for d in loaded.deployments()] == ["echo"]


async def test_a_router_builds_only_the_providers_its_deployments_name() -> None:
    pool = ClientPool()
    built = provider_set(pool)
    assert built.built() == [] and "anthropic" in built and "nope" not in built
    first = built["anthropic"]
    assert built["anthropic"] is first and built.built() == ["anthropic"]
    assert built.get("nope") is None
    await pool.aclose()


def test_an_openai_router_never_imports_the_translation_codecs() -> None:
    script = (
        "import sys\n"
        "from router import Router\n"
        "Router([{'model_name': 'g', 'litellm_params': {'model': 'openai/gpt-4o',"
        " 'api_key': 'k'}}])\n"
        "print(sorted(m for m in sys.modules if m.endswith('_codec') or m in"
        " ('providers.sigv4', 'providers.aws_eventstream', 'providers.anthropic')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
