"""The pipeline's parameter descriptions (its docstring's Args), made from the help texts of the parameters
declared in trainboard/config.py: KFP shows them in its UI, and a parameter is described once."""

import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from trainboard.config import CONFIGS

# An entry of a docstring's Args section (first line): 8 spaces, NAME, ": ".
_ARGS_ENTRY = re.compile(r"\n(?= {8}\w+: )")


def _config_entry(name: str, help: str) -> str:
    """The Args entry of config parameter ``name``: its help, wrapped as the rest of the docstring."""
    return "\n".join(
        textwrap.wrap(
            f"{name}: {help}",
            width=110,  # the line length: as if written out here
            initial_indent=" " * 8,
            subsequent_indent=" " * 12,
            break_long_words=False,
            break_on_hyphens=False,
        )
    )


def args_from_config(pipeline_func: Callable[..., Any]) -> Callable[..., Any]:
    """``pipeline_func`` with its docstring's Args completed: one entry a parameter, in the signature's
    order, a config parameter's from its help in trainboard/config.py, the pipeline's own as written out
    in the docstring. KFP reads them as the parameters' descriptions when @dsl.pipeline decorates, so
    this decorator goes under it. ValueError when a parameter has no entry or an entry no parameter."""
    head, written_args = (pipeline_func.__doc__ or "").split("\n    Args:\n")
    written = {entry.split(":")[0].strip(): entry for entry in _ARGS_ENTRY.split(written_args.rstrip())}
    helps = {f.name: f.metadata["help"] for config in CONFIGS for f in fields(config)}
    names = inspect.signature(pipeline_func).parameters
    if set(names) != set(written) | set(helps) or set(written) & set(helps):
        raise ValueError(
            f"{pipeline_func.__name__}: Args written out for {sorted(written)}, config parameters "
            f"{sorted(helps)}: each parameter needs one entry"
        )
    entries = [written[name] if name in written else _config_entry(name, helps[name]) for name in names]
    pipeline_func.__doc__ = head + "\n    Args:\n" + "\n".join(entries) + "\n    "
    return pipeline_func
