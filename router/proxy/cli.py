"""The console script: ``responses-router serve --config config.yaml``.

    responses-router serve --config config.yaml [--host 127.0.0.1] [--port 4000] [--workers N]

Checks what can be checked before any worker starts (the file reads, and
``--workers`` above 1 has Redis to share state through), then runs the
:class:`~router.proxy.supervisor.Supervisor`. The full config is validated by
each worker; a worker that finds it invalid exits with status 78 and the
server stops with the worker's message. Only the standard library and
PyYAML are imported here, so the server is up as soon as its workers are.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

__all__ = ["main"]

_REDIS_KEYS = ("redis_url", "redis_host")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="responses-router",
                                     description="The responses-router server.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the OpenAI Responses API over HTTP")
    serve.add_argument("--config", required=True, help="LiteLLM-style config.yaml")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4000, help="0 picks a free port")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (N>1 needs Redis)")
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
            f"(or redis_host) in {path}, so that the workers share pins, cooldowns, limits "
            "and response owners; without Redis run --workers 1")


def _grace(doc: Mapping[str, Any]) -> float:
    value = _section(doc, "general_settings").get("graceful_shutdown_timeout", 30.0)
    return float(value) if isinstance(value, int | float) and value >= 0 else 30.0


def _say(line: str) -> None:
    print(line, flush=True)


def serve(args: argparse.Namespace) -> int:
    from router.proxy.supervisor import Supervisor, SupervisorOptions

    doc = _document(args.config)
    _check_workers(doc, args.workers, args.config)
    opts = SupervisorOptions(args.config, args.host, args.port, args.workers, _grace(doc),
                             say=_say)
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
