"""Azure OpenAI URL shapes (providers/azure.py)."""

from __future__ import annotations

import pytest

from router.config import DeploymentConfig
from router.deployment import Deployment

# isort: split
from providers.azure import AzureProvider, azure_collection
from providers.http import ClientPool

BASE = "https://east.openai.azure.com"
V1 = f"{BASE}/openai/v1/responses"
LEGACY = f"{BASE}/openai/responses"


@pytest.mark.parametrize("version", [None, "v1", "latest"])
def test_v1_shape(version: str | None) -> None:
    assert azure_collection(BASE, version) == (V1, {})


def test_preview_adds_the_preview_api_version() -> None:
    assert azure_collection(BASE, "preview") == (V1, {"api-version": "preview"})


@pytest.mark.parametrize("version", ["2025-03-01-preview", "2025-04-01-preview", "2024-10-21"])
def test_dated_versions_use_the_legacy_shape(version: str) -> None:
    assert azure_collection(BASE, version) == (LEGACY, {"api-version": version})


@pytest.mark.parametrize("api_base", [
    BASE,
    f"{BASE}/",
    f"{BASE}//",
    f"{BASE}/openai",
    f"{BASE}/openai/",
    f"{BASE}/openai/v1",
    f"{BASE}/openai/v1/",
])
@pytest.mark.parametrize(("version", "url"), [(None, V1), ("2025-03-01-preview", LEGACY)])
def test_api_base_forms_are_normalised(api_base: str, version: str | None, url: str) -> None:
    assert azure_collection(api_base, version)[0] == url


def test_api_base_with_a_gateway_path_is_kept() -> None:
    url, _ = azure_collection("https://gw.example.com/azure/east/", None)
    assert url == "https://gw.example.com/azure/east/openai/v1/responses"


def test_query_is_a_fresh_dict_per_call() -> None:
    _, first = azure_collection(BASE, "preview")
    first["x"] = "1"
    assert azure_collection(BASE, "preview")[1] == {"api-version": "preview"}


def _config(**params: object) -> DeploymentConfig:
    litellm_params = {"model": "azure/my-gpt4o", "api_base": f"{BASE}/openai/",
                      "api_key": "sk-azure-SECRET", **params}
    return DeploymentConfig.model_validate({
        "model_name": "gpt-4o", "litellm_params": litellm_params,
    })


def test_prepare_builds_endpoint_with_key_header_and_state_domain() -> None:
    provider = AzureProvider(ClientPool())
    endpoint = provider.prepare(_config(api_version="2025-03-01-preview",
                                        extra_query={"trace": "1"}))
    assert endpoint.collection_url == LEGACY
    assert endpoint.query == {"api-version": "2025-03-01-preview", "trace": "1"}
    assert endpoint.headers["api-key"] == "sk-azure-SECRET"
    assert endpoint.state_domain.startswith(f"azure:{BASE}")
    assert "SECRET" not in repr(endpoint)
    assert "SECRET" not in endpoint.state_domain


def test_state_domain_is_the_resource_not_the_key_or_version() -> None:
    provider = AzureProvider(ClientPool())
    one = provider.prepare(_config(api_key="key-1", api_version="2025-03-01-preview"))
    two = provider.prepare(_config(api_key="key-2", api_base=f"{BASE}/openai/v1"))
    other = provider.prepare(_config(api_base="https://west.openai.azure.com"))
    assert one.state_domain == two.state_domain
    assert one.state_domain != other.state_domain


def test_state_domain_ignores_an_explicit_default_port() -> None:
    provider = AzureProvider(ClientPool())
    implicit = provider.prepare(_config(api_base=BASE))
    explicit = provider.prepare(_config(api_base="https://east.openai.azure.com:443"))
    assert implicit.state_domain == explicit.state_domain


def test_deployment_repr_hides_the_key() -> None:
    config = _config()
    provider = AzureProvider(ClientPool())
    deployment = Deployment(
        id="d1", model_name="gpt-4o", provider_name="azure", upstream_model="my-gpt4o",
        config=config, provider=provider, endpoint=provider.prepare(config),
    )
    assert "SECRET" not in repr(deployment)
    assert "SECRET" not in repr(config)
    assert deployment.state_domain == deployment.endpoint.state_domain
