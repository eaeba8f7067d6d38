"""Router configuration: validated models and the loaders that build them.

A configuration comes from ``Router(model_list=..., **settings)`` arguments
(:func:`build_config`), from a parsed LiteLLM config document
(:func:`parse_config_document`) or from a ``config.yaml`` file
(:func:`load_config_file`). Each yields a frozen :class:`RouterConfig` or raises
one :class:`~router.errors.ConfigError` listing every problem by path.
LiteLLM keys this router does not implement are ignored with a
:class:`ConfigWarning`. See :mod:`router.config.models` for the fields and
:mod:`router.config.loading` for the rules.
"""

from router.config.keys import SUPPORTED_PROVIDERS
from router.config.loading import (
    ConfigWarning,
    build_config,
    load_config_file,
    parse_config_document,
    resolve_env,
)
from router.config.models import (
    DeploymentConfig,
    LiteLLMParams,
    ModelInfo,
    RouterConfig,
    RouterSettings,
)

__all__ = [
    "SUPPORTED_PROVIDERS",
    "ConfigWarning",
    "DeploymentConfig",
    "LiteLLMParams",
    "ModelInfo",
    "RouterConfig",
    "RouterSettings",
    "build_config",
    "load_config_file",
    "parse_config_document",
    "resolve_env",
]
