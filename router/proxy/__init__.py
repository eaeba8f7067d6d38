"""The OpenAI-compatible server: ``responses-router serve`` (extra ``[proxy]``).

A thin HTTP layer over :class:`router.router.Router`: it authenticates the
caller, checks the body's shape, calls the Router's public API and writes
OpenAI-shaped JSON, Server-Sent Events and errors. Routing, retries, pins and
cooldowns are the Router's; what the server keeps itself is what only a
server needs: API keys with their models and rate limits, and which key owns
which stored response (:mod:`router.proxy.state`).

Modules: :mod:`~router.proxy.settings` (the config's server section),
:mod:`~router.proxy.auth` (keys), :mod:`~router.proxy.state` (owners and
per-key limits, in memory or Redis), :mod:`~router.proxy.errors` (errors as
OpenAI JSON), :mod:`~router.proxy.body` (request checks),
:mod:`~router.proxy.sse` (event framing), :mod:`~router.proxy.app` (routes),
:mod:`~router.proxy.metrics` (``/metrics`` over every worker),
:mod:`~router.proxy.worker` (one serving process),
:mod:`~router.proxy.supervisor` (N workers on one port) and
:mod:`~router.proxy.cli` (the console script).
"""
