"""The console script: ``responses-router serve --config config.yaml``.

    responses-router serve --config config.yaml [--host 127.0.0.1] [--port 4000] [--workers N]
                           [--loop auto|uvloop|asyncio]

Checks the config before any worker starts (the Router's part and the
server's, every problem by path, exit status 78; ``--workers`` above 1 needs
Redis to share state through), then runs the
:class:`~router.proxy.supervisor.Supervisor`, which forks the workers from
this process: the server's code is imported once, here, before the fork.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from router.proxy.supervisor import EX_CONFIG

__all__ = ["main"]

_REDIS_KEYS = ("redis_url", "redis_host", "redis_startup_nodes", "sentinel_nodes")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="responses-router",
                                     description="The responses-router server.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the OpenAI Responses API over HTTP")
    serve.add_argument("--config", required=True, help="LiteLLM-style config.yaml")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4000, help="0 picks a free port")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (N>1 needs Redis)")
    serve.add_argument("--loop", default="auto",
                       help="the workers' event loop: auto (uvloop when installed), uvloop "
                            "or asyncio")
    return parser


def _document(path: str) -> Mapping[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as exc:
        raise SystemExit(f"responses-router: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise SystemExit(f"responses-router: {path} is not valid YAML") from None
    if not isinstance(doc, Mapping):
        raise SystemExit(f"responses-router: {path}: expected a mapping with a model_list")
    return doc


def _section(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = doc.get(name)
    return value if isinstance(value, Mapping) else {}


def _check_workers(doc: Mapping[str, Any], workers: int, path: str) -> None:
    if workers < 1:
        raise SystemExit("responses-router: --workers must be at least 1")
    settings = _section(doc, "router_settings")
    if workers > 1 and not any(settings.get(k) for k in _REDIS_KEYS):
        raise SystemExit(
            f"responses-router: --workers {workers} needs Redis: set router_settings.redis_url "
            f"(or redis_host, redis_startup_nodes, sentinel_nodes) in {path}, so that the "
            "workers share pins, cooldowns, limits and response owners; without Redis run "
            "--workers 1")


def _grace(doc: Mapping[str, Any]) -> float:
    value = _section(doc, "general_settings").get("graceful_shutdown_timeout", 30.0)
    return float(value) if isinstance(value, int | float) and value >= 0 else 30.0


def _say(line: str) -> None:
    print(line, flush=True)


def _validate(path: str) -> None:
    """The whole config, as the workers will read it; exit 78 naming every problem."""
    from router.config.loading import load_config_file
    from router.errors import ConfigError
    from router.proxy.settings import server_settings

    failed = False
    for check in (lambda: load_config_file(path),
                  lambda: server_settings(_document(path), source=path)):
        try:
            check()
        except ConfigError as exc:
            print(f"responses-router: {exc}", file=sys.stderr, flush=True)
            failed = True
    if failed:
        raise SystemExit(EX_CONFIG)


def serve(args: argparse.Namespace) -> int:
    from router.errors import ConfigError
    from router.proxy.supervisor import Supervisor, SupervisorOptions
    from router.proxy.worker import loop_factory, run_worker  # imported before the fork

    try:
        loop = loop_factory(args.loop)
    except ConfigError as exc:
        raise SystemExit(f"responses-router: {exc}") from None
    doc = _document(args.config)
    _check_workers(doc, args.workers, args.config)
    _validate(args.config)
    opts = SupervisorOptions(functools.partial(run_worker, loop=loop), args.config, args.host,
                             args.port, args.workers, _grace(doc), say=_say)
    try:
        supervisor = Supervisor(opts)
    except OSError as exc:
        raise SystemExit(f"responses-router: cannot listen on {args.host}:{args.port}: "
                         f"{exc.strerror}") from None
    return supervisor.run()


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    sys.exit(serve(args))


if __name__ == "__main__":
    main()
