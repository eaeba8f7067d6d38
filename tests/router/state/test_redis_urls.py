"""Redis by URL: a Cluster (``redis+cluster://``) and a Sentinel set (``redis+sentinel://``),
parsed (every form and every refusal) and used end to end against real servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from router.errors import ConfigError
from router.router import Router
from router.state.urls import target_from_url
from tests.conftest import openai_dep

if TYPE_CHECKING:
    from tests.redis_fixtures import PrivateCluster, PrivateSentinel

pytest_plugins = ("tests.redis_fixtures",)

PIN = ["responses_api_deployment_check"]


def test_a_server_url_is_passed_as_written() -> None:
    for url in ("redis://h:1/2", "rediss://:pw@h:6380/0", "unix:///tmp/r.sock?db=1"):
        assert target_from_url(url).url == url


def test_cluster_urls() -> None:
    t = target_from_url("rediss+cluster://user:p%40ss@a:7000,b:7001,[::1]:7002/")
    assert t.kind == "cluster" and t.ssl
    assert t.startup_nodes == (("a", 7000), ("b", 7001), ("::1", 7002))
    assert (t.username, t.password) == ("user", "p@ss")
    assert "p@ss" not in repr(t)


def test_sentinel_urls() -> None:
    t = target_from_url("redis+sentinel://:pw@s1:26379,s2:26380/mymaster/3"
                        "?sentinel_password=s%2Fp")
    assert t.kind == "sentinel" and not t.ssl
    assert (t.service_name, t.db, t.password, t.sentinel_password) == ("mymaster", 3, "pw",
                                                                       "s/p")
    assert target_from_url("redis+sentinel://s1:26379/mymaster").db == 0


@pytest.mark.parametrize(("url", "why"), [
    ("http://h:1", "must be a redis://"),
    ("redis+cluster://", "at least one host"),
    ("redis+cluster://a", "needs a port"),
    ("redis+cluster://a:1/0", "host:port pairs only"),
    ("redis+cluster://a:1?ssl=true", "host:port pairs only"),
    ("redis+cluster://a:99999", "not a host and port"),
    ("redis+sentinel://a:1", "names the service"),
    ("redis+sentinel://a:1/m/x", "must be a number"),
    ("redis+sentinel://a:1/m/0/extra", "names the service"),
    ("redis+sentinel://a:1/m?socket_timeout=1", "unknown options"),
])
def test_bad_urls_are_refused_naming_why(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        target_from_url(url)


def test_a_bad_url_is_a_config_error_that_hides_the_password() -> None:
    with pytest.raises(ConfigError, match="redis_url") as e:
        Router([{"model_name": "m", "litellm_params": {"model": "openai/x", "api_key": "k"}}],
               redis_url="redis+cluster://:hunter2@a")
    assert "hunter2" not in str(e.value)


async def test_a_router_on_a_cluster_url_shares_records_with_one_on_startup_nodes(
    upstreams: Any, make_router: Any, redis_cluster: PrivateCluster
) -> None:
    ups = await upstreams("a", "b")
    deps = [openai_dep(u) for u in ups]
    nodes = ",".join(f"127.0.0.1:{n['port']}" for n in redis_cluster.startup_nodes)
    by_url = make_router(deps, optional_pre_call_checks=PIN, redis_key_prefix="url-c:",
                         redis_url=f"redis+cluster://{nodes}")
    by_nodes = make_router(deps, optional_pre_call_checks=PIN, redis_key_prefix="url-c:",
                           redis_startup_nodes=redis_cluster.startup_nodes)
    assert by_url._parts.services.store.shared.target.kind == "cluster"
    for _ in range(4):
        first = await by_url.aresponses(model="gpt-4o", input="hi")
        follow = await by_nodes.aresponses(model="gpt-4o", input="next",
                                           previous_response_id=first.id)
        assert follow.routing.deployment_id == first.routing.deployment_id
    assert [r for u in ups for r in u.requests if r.method == "GET"] == []  # no discovery


async def test_a_router_on_a_sentinel_url(
    upstreams: Any, make_router: Any, redis_sentinel: PrivateSentinel
) -> None:
    ups = await upstreams("a", "b")
    deps = [openai_dep(u) for u in ups]
    url = f"redis+sentinel://127.0.0.1:{redis_sentinel.sentinel}/mymaster/0"
    one = make_router(deps, optional_pre_call_checks=PIN, redis_key_prefix="url-s:",
                      redis_url=url)
    two = make_router(deps, optional_pre_call_checks=PIN, redis_key_prefix="url-s:",
                      sentinel_nodes=redis_sentinel.sentinel_nodes, service_name="mymaster")
    assert one._parts.services.store.shared.target.kind == "sentinel"
    for _ in range(4):
        first = await one.aresponses(model="gpt-4o", input="hi")
        follow = await two.aresponses(model="gpt-4o", input="next",
                                      previous_response_id=first.id)
        assert follow.routing.deployment_id == first.routing.deployment_id
    assert [r for u in ups for r in u.requests if r.method == "GET"] == []
