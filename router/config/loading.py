"""Turning user input into a :class:`RouterConfig`: files, documents, ``Router(...)`` arguments.

Why this layer exists: a LiteLLM ``config.yaml`` must load unchanged, yet a typo
must never silently change behaviour. So every key is sorted into one of three
kinds (see :mod:`router.config.keys`): ours (validated), LiteLLM's but not
implemented here (ignored with one :class:`ConfigWarning` per section), and
unknown (an error suggesting the nearest valid key). ``os.environ/NAME`` values
are read from the environment at load. Every problem found is collected and
raised as one :class:`~router.errors.ConfigError` whose lines name the bad field
by path (``model_list[2].litellm_params.api_base: ...``). Messages are built
from key names and pydantic's message text only, never from input values, so a
secret cannot leak into them.

All of this runs once, when a router is built; nothing here is on the request path.
"""

from __future__ import annotations

import json
import os
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

import router.config.keys as keys
from router.config.keys import SUPPORTED_PROVIDERS, did_you_mean
from router.config.models import DeploymentConfig, RouterConfig, RouterSettings
from router.config.scalars import load_json, load_yaml, text_or_none
from router.errors import ConfigError

if TYPE_CHECKING:
    import yaml

ENV_PREFIX = "os.environ/"

_M = TypeVar("_M", bound=BaseModel)
_Origins = Mapping[str, str]


class ConfigWarning(UserWarning):
    """A configuration key was accepted but has no effect in this router."""


@dataclass(frozen=True)
class _KeySet:
    """The keys one section accepts, and how it treats the others."""

    ours: frozenset[str]
    litellm: frozenset[str]
    noun: str
    lenient: bool = False  # unknown keys are completion kwargs unless near misses of ours


_DOCUMENT = _KeySet(keys.DOCUMENT_KEYS, keys.LITELLM_DOCUMENT_KEYS, "top-level key")
_DEPLOYMENT = _KeySet(keys.DEPLOYMENT_KEYS, keys.LITELLM_DEPLOYMENT_KEYS, "deployment key")
_PARAMS = _KeySet(keys.PARAMS_KEYS | frozenset(keys.PRICING_KEYS), keys.LITELLM_PARAMS_KEYS,
                  "parameter", lenient=True)
_SETTINGS = _KeySet(keys.SETTINGS_KEYS, keys.LITELLM_SETTINGS_KEYS, "setting")


@dataclass
class _Report:
    """What loading one configuration found: problems (fatal) and ignored keys."""

    source: str
    #: Provider prefixes deployments may name (the built-ins and the caller's).
    providers: tuple[str, ...] = SUPPORTED_PROVIDERS
    problems: list[str] = field(default_factory=list)
    problem_paths: list[str] = field(default_factory=list)
    ignored: dict[str, list[str]] = field(default_factory=dict)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")
        self.problem_paths.append(path)

    def already_reported(self, path: str) -> bool:
        return any(path == p or path.startswith((p + ".", p + "[")) for p in self.problem_paths)

    def ignore(self, section: str, path: str, names: Sequence[str]) -> None:
        if names:
            entry = f"{path or 'top level'}: {', '.join(names)}"
            self.ignored.setdefault(section, []).append(entry)

    def finish(self, config: RouterConfig | None) -> RouterConfig:
        if self.problems or config is None:
            count = len(self.problems)
            raise ConfigError(
                f"invalid router configuration in {self.source} ({count} problem"
                f"{'' if count == 1 else 's'})", self.problems)
        return config

    def warn(self, stacklevel: int) -> list[str]:
        """Issue one ConfigWarning per section; ``stacklevel`` counts from the caller."""
        messages = [
            f"{self.source}: ignoring keys responses-router does not use: {'; '.join(entries)}"
            for entries in self.ignored.values()
        ]
        for message in messages:
            warnings.warn(message, ConfigWarning, stacklevel=stacklevel + 1)
        return messages


# --- paths and environment references -------------------------------------------


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _loc_path(prefix: str, loc: tuple[int | str, ...], origins: _Origins) -> str:
    """Render a pydantic ``loc`` as ``prefix.field[0].key``; ``origins`` renames fields."""
    path = prefix
    if loc and isinstance(loc[0], str) and loc[0] in origins:
        path, loc = origins[loc[0]], loc[1:]
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


def _resolve(value: Any, path: str, report: _Report) -> Any:
    """Replace ``os.environ/NAME`` strings in ``value``; report the missing ones."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value.removeprefix(ENV_PREFIX)
        if name in os.environ:
            return os.environ[name]
        report.problem(path, f"environment variable {name or '(empty name)'} is not set")
        return value
    if isinstance(value, Mapping):
        return {k: _resolve(v, _join(path, k), report) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(v, f"{path}[{i}]", report) for i, v in enumerate(value)]
    return value


def resolve_env(value: Any, path: str) -> Any:
    """Return ``value`` with every ``os.environ/NAME`` string replaced by ``$NAME``.

    Recurses into mappings and lists. Raises :class:`ConfigError` naming each
    unset variable and its ``path`` (``path.key[0]`` for nested values).
    """
    report = _Report(source=path)
    resolved = _resolve(value, path, report)
    if report.problems:
        raise ConfigError("unresolved environment variable reference", report.problems)
    return resolved


# --- sorting keys and validating --------------------------------------------------


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _as_mapping(value: Any, path: str, report: _Report, what: str) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    report.problem(path, f"must be {what}, got {_type_name(value)}")
    return None


def _section(value: Any, path: str, report: _Report) -> Mapping[str, Any] | None:
    """An optional mapping: absent or empty (``null`` in YAML) is ``{}``."""
    return {} if value is None else _as_mapping(value, path, report, "a mapping")


def _sort_keys(raw: Mapping[Any, Any], path: str, keyset: _KeySet, section: str,
               report: _Report) -> dict[str, Any]:
    """Keep our keys; record LiteLLM's as ignored; report unknown ones with a suggestion."""
    kept: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in raw.items():
        if not isinstance(key, str):
            report.problem(path or "top level", f"keys must be strings, got {_type_name(key)}")
        elif key in keyset.ours:
            kept[key] = value
        elif key in keyset.litellm or (keyset.lenient and not _near_miss(key, keyset)):
            if value is not None:
                ignored.append(key)
        else:
            choices = keyset.ours if keyset.lenient else keyset.ours | keyset.litellm
            hint = did_you_mean(key, choices)
            report.problem(_join(path, key), f"unknown {keyset.noun}{hint}")
    report.ignore(section, path, ignored)
    return kept


def _near_miss(key: str, keyset: _KeySet) -> bool:
    return bool(did_you_mean(key, keyset.ours, cutoff=0.8))


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "missing":
        return "required"
    return str(error["msg"]).removeprefix("Value error, ")


def _validated(model: type[_M], data: Mapping[str, Any], prefix: str, report: _Report,
               origins: _Origins | None = None) -> _M | None:
    """Validate ``data`` as ``model``; on failure report each error by path."""
    try:
        return model.model_validate(data, context={"providers": report.providers})
    except ValidationError as exc:
        # include_input=False: pydantic would otherwise carry the value (a key, maybe).
        for error in exc.errors(include_url=False, include_input=False, include_context=False):
            path = _loc_path(prefix, error["loc"], origins or {})
            if not report.already_reported(path):
                report.problem(path, _message(error))
        return None


# --- deployments ------------------------------------------------------------------


def _params_key(entry: Mapping[str, Any], path: str, report: _Report) -> str | None:
    present = [k for k in ("litellm_params", "params") if k in entry]
    if len(present) == 1:
        return present[0]
    report.problem(path, "give litellm_params or params, not both" if present
                   else "missing litellm_params")
    return None


def _adopt_litellm_placements(entry: Mapping[str, Any], params: dict[str, Any],
                              info: dict[str, Any], path: str, report: _Report) -> None:
    """Move values LiteLLM accepts elsewhere to where our models hold them.

    LiteLLM reads ``tpm``/``rpm`` at the top of a deployment too, and copies
    prices set in ``litellm_params`` into ``model_info``.
    """
    for name in ("tpm", "rpm"):
        if name in entry and params.get(name) is None:
            params[name] = _resolve(entry[name], _join(path, name), report)
    for name in keys.PRICING_KEYS:
        if name in params:
            price = params.pop(name)
            info.setdefault(name, price)


def _entry_sections(kept: Mapping[str, Any], path: str, report: _Report
                    ) -> tuple[str, Mapping[str, Any], Mapping[str, Any]] | None:
    """The params key used and the raw params and model_info mappings, if well formed."""
    params_key = _params_key(kept, path, report)
    raw_params = None if params_key is None else _as_mapping(
        kept[params_key], _join(path, params_key), report, "a mapping")
    raw_info = _section(kept.get("model_info"), f"{path}.model_info", report)
    if params_key is None or raw_params is None or raw_info is None:
        return None
    return params_key, raw_params, raw_info


def _deployment_input(raw: Any, path: str, report: _Report) -> dict[str, Any] | None:
    """Check and normalise one ``model_list`` entry into input for DeploymentConfig."""
    entry = _as_mapping(raw, path, report, "a mapping with model_name and litellm_params")
    kept = _sort_keys(entry, path, _DEPLOYMENT, "model_list", report) if entry else {}
    sections = _entry_sections(kept, path, report) if entry is not None else None
    if sections is None:
        return None
    params_key, raw_params, raw_info = sections
    params_path = _join(path, params_key)
    params = _resolve(_sort_keys(raw_params, params_path, _PARAMS, "model_list", report),
                      params_path, report)
    info = _resolve(raw_info, f"{path}.model_info", report)
    _adopt_litellm_placements(kept, params, info, path, report)
    out = {k: v for k, v in kept.items() if k not in ("tpm", "rpm")}
    out.update({params_key: params, "model_info": info})
    return out


def _deployments(model_list: Any, report: _Report
                 ) -> tuple[list[tuple[str, DeploymentConfig]], set[str]]:
    """Validate every entry; return the valid ones (with paths) and all model names."""
    if isinstance(model_list, str | bytes) or not isinstance(model_list, Sequence):
        report.problem("model_list", f"must be a list of deployments, got {_type_name(model_list)}")
        return [], set()
    if not model_list:
        report.problem("model_list", "must list at least one deployment")
    valid: list[tuple[str, DeploymentConfig]] = []
    names: set[str] = set()
    for index, raw in enumerate(model_list):
        path = f"model_list[{index}]"
        data = _deployment_input(raw, path, report)
        name = None if data is None else text_or_none(data.get("model_name"))
        if name is not None:
            names.add(name)
        deployment = _validated(DeploymentConfig, data, path, report) if data else None
        if deployment is not None:
            valid.append((path, deployment))
    return valid, names


# --- settings and cross-references ------------------------------------------------


def _settings(raw: Mapping[Any, Any], origins: _Origins, report: _Report
              ) -> RouterSettings | None:
    kept = _sort_keys(raw, "router_settings", _SETTINGS, "router_settings", report)
    values = {k: _resolve(v, origins.get(k, f"router_settings.{k}"), report)
              for k, v in kept.items() if v is not None}
    return _validated(RouterSettings, values, "router_settings", report, origins)


def _check_target(target: str, path: str, valid: set[str], report: _Report, what: str) -> None:
    if target not in valid:
        report.problem(path, f"{what} unknown model group '{target}'"
                             f"{did_you_mean(target, frozenset(valid))}")


def _check_fallbacks(settings: RouterSettings, names: set[str], origins: _Origins,
                     report: _Report) -> None:
    from router.wildcards import matches_pattern  # its imports need router.config loaded

    valid = names | set(settings.model_group_alias)
    # A fallback to "anthropic/claude-x" is served by an "anthropic/*" group.
    valid |= {t for item in (*settings.fallbacks, *settings.context_window_fallbacks,
                             *settings.content_policy_fallbacks, {"": settings.default_fallbacks})
              for targets in item.values() for t in targets if matches_pattern(t, names)}
    for name in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        base = origins.get(name, f"router_settings.{name}")
        for i, item in enumerate(getattr(settings, name)):
            for group, targets in item.items():
                for j, target in enumerate(targets):
                    _check_target(target, f"{base}[{i}].{group}[{j}]", valid, report,
                                  "fallback to")
    base = origins.get("default_fallbacks", "router_settings.default_fallbacks")
    for j, target in enumerate(settings.default_fallbacks):
        _check_target(target, f"{base}[{j}]", valid, report, "fallback to")
    for alias, target in settings.model_group_alias.items():
        _check_target(target, f"router_settings.model_group_alias.{alias}", names, report,
                      "alias of")


def _check_unique_ids(deployments: list[tuple[str, DeploymentConfig]], report: _Report) -> None:
    first: dict[str, str] = {}
    for path, deployment in deployments:
        dep_id = deployment.model_info.id
        if dep_id is not None and dep_id in first:
            report.problem(f"{path}.model_info.id",
                           f"duplicate deployment id '{dep_id}' (also {first[dep_id]})")
        elif dep_id is not None:
            first[dep_id] = path


def _build(model_list: Any, settings: Mapping[Any, Any], origins: _Origins,
           report: _Report) -> RouterConfig | None:
    deployments, names = _deployments(model_list, report)
    router_settings = _settings(settings, origins, report)
    if router_settings is None:
        return None
    _check_fallbacks(router_settings, names, origins, report)
    _check_unique_ids(deployments, report)
    return RouterConfig(model_list=tuple(d for _, d in deployments), settings=router_settings)


def build_config(model_list: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], *,
                 source: str = "Router(...)",
                 providers: Sequence[str] = SUPPORTED_PROVIDERS,
                 ) -> tuple[RouterConfig, list[str]]:
    """Validate ``Router(model_list=..., **settings)`` arguments.

    ``settings`` uses LiteLLM's ``router_settings`` names; a ``None`` value means
    "use the default". ``providers``: the provider prefixes deployments may
    name. Returns the config and the warning messages issued (as
    :class:`ConfigWarning`). Raises :class:`ConfigError` listing every problem.
    """
    report = _Report(source, tuple(providers))
    _check_argument_types(settings, report)
    config = report.finish(_build(model_list, settings, {}, report))
    return config, report.warn(stacklevel=2)


def _kind_of(annotation: Any) -> str | None:
    """``"integer"``, ``"number"`` or ``"flag"`` for a settings field's type, else ``None``."""
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (
        typing.Union, types.UnionType) else (annotation,)
    kinds = {typing.get_args(m)[0] if typing.get_origin(m) is typing.Annotated else m
             for m in members}
    if str in kinds:
        return None
    if bool in kinds:
        return "flag"
    return "number" if float in kinds else "integer" if int in kinds else None


#: RouterSettings fields that hold numbers or flags, by kind: ``Router(...)`` takes no
#: text for them, and no float for an integer.
_TYPED_SETTINGS: Mapping[str, str] = MappingProxyType({
    name: kind for name, info in RouterSettings.model_fields.items()
    if (kind := _kind_of(info.annotation)) is not None
})

_EXPECTED = MappingProxyType({
    "integer": "an integer", "number": "a number", "flag": "a boolean (True or False)"})


def _check_argument_types(settings: Mapping[str, Any], report: _Report) -> None:
    """Refuse text for numeric and boolean ``Router(...)`` arguments, floats for integers.

    A config file (and an ``os.environ/`` reference) can only give text, so
    numeric text is accepted there (LiteLLM documents ``redis_port`` as a
    string); a keyword argument is typed by the caller, and is held to the
    same rule as the per-call parameters: ``num_retries="3"``,
    ``num_retries=2.0`` and ``disable_cooldowns="no"`` are refused by both.
    """
    for name in settings.keys() & _TYPED_SETTINGS.keys():
        value, kind = settings[name], _TYPED_SETTINGS[name]
        if isinstance(value, str) and not value.startswith(ENV_PREFIX):
            # The value is not shown: a misplaced secret must not reach a message.
            report.problem(f"router_settings.{name}", f"expected {_EXPECTED[kind]}, got text "
                           "(text is read as a value only in a config document: "
                           "Router.from_config / from_dict, or os.environ/)")
        elif kind == "integer" and isinstance(value, float):
            report.problem(f"router_settings.{name}", f"expected an integer, got {value!r}")


# --- whole documents and files ------------------------------------------------------


def _merge_litellm_settings(router_settings: Mapping[Any, Any],
                            litellm_settings: Mapping[Any, Any],
                            report: _Report) -> tuple[dict[Any, Any], dict[str, str]]:
    """Fill the router settings LiteLLM reads from ``litellm_settings`` when unset."""
    merged = dict(router_settings)
    origins: dict[str, str] = {}
    honoured = dict(keys.LITELLM_SETTINGS_HONOURED)
    ignored = []
    for key, value in litellm_settings.items():
        target = honoured.get(key) if isinstance(key, str) else None
        if target is None:
            if value is not None:
                ignored.append(str(key))
        elif value is not None and merged.get(target) is None:
            merged[target] = value
            origins[target] = f"litellm_settings.{key}"
    report.ignore("litellm_settings", "litellm_settings", ignored)
    return merged, origins


def _parse_document(doc: Any, report: _Report) -> RouterConfig | None:
    top = _as_mapping(doc, "top level", report, "a mapping with a model_list")
    if top is None:
        return None
    kept = _sort_keys(top, "", _DOCUMENT, "top level", report)
    router_settings = _section(kept.get("router_settings"), "router_settings", report)
    litellm_settings = _section(kept.get("litellm_settings"), "litellm_settings", report)
    if "model_list" not in kept:
        report.problem("model_list", "required")
    if router_settings is None or litellm_settings is None or "model_list" not in kept:
        return None
    _general_settings(kept.get("general_settings"), report)
    merged, origins = _merge_litellm_settings(router_settings, litellm_settings, report)
    return _build(kept["model_list"], merged, origins, report)


def _general_settings(raw: Any, report: _Report) -> None:
    """Accept the server's ``general_settings`` keys silently; LiteLLM's others warn.

    The server validates its keys itself (:mod:`router.proxy.settings`); the
    Router reads none of them, so a Router still loads the whole file.
    """
    section = _section(raw, "general_settings", report)
    if section is None:
        return
    ignored = [str(k) for k, v in section.items()
               if k not in keys.GENERAL_SETTINGS_KEYS and v is not None]
    report.ignore("general_settings", "general_settings", ignored)


def parse_config_document(doc: Mapping[str, Any], *, source: str,
                          providers: Sequence[str] = SUPPORTED_PROVIDERS) -> RouterConfig:
    """Validate a whole LiteLLM config document (``model_list``, ``router_settings``, ...).

    ``litellm_settings`` feeds the router settings LiteLLM's Router reads from it
    (``num_retries``, ``request_timeout`` as ``timeout``, the fallbacks, ...) when
    ``router_settings`` does not set them. Other LiteLLM sections are ignored
    with a :class:`ConfigWarning`. ``source`` names the document in messages;
    ``providers``: the provider prefixes deployments may name.
    """
    return _parse(doc, source, providers)


def _parse(doc: Any, source: str, providers: Sequence[str]) -> RouterConfig:
    report = _Report(source, tuple(providers))
    config = report.finish(_parse_document(doc, report))
    report.warn(stacklevel=3)  # attributed to the caller of the public function
    return config


def _yaml_problem(source: str, exc: yaml.YAMLError) -> str:
    # Built from the position only: PyYAML's own text quotes the offending line,
    # which may hold a secret.
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None)
    return f"{source}: invalid YAML{where}{': ' + problem if problem else ''}"


def _read_document(path: Path, source: str) -> Any:
    import yaml  # on first use: a router built from a model_list never loads PyYAML

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"cannot read config file {source}: {reason}") from None
    try:
        if path.suffix.lower() == ".json":
            return load_json(text)
        duplicates: list[str] = []
        doc = load_yaml(text, duplicates)
        if duplicates:
            warnings.warn(f"{source}: the later value wins: {'; '.join(duplicates)}",
                          ConfigWarning, stacklevel=3)
        return doc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(source, exc)) from None


def load_config_file(path: str | os.PathLike[str],
                     providers: Sequence[str] = SUPPORTED_PROVIDERS) -> RouterConfig:
    """Load a LiteLLM ``config.yaml`` (or a ``.json`` file of the same shape).

    Raises :class:`ConfigError` when the file cannot be read or parsed, or when
    its content is invalid; every message names the file. ``providers``: the
    provider prefixes deployments may name.
    """
    source = os.fspath(path)
    return _parse(_read_document(Path(source), source), source, providers)
