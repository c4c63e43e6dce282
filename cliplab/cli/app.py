"""The typer app and what every command shares: options, error handling, output helpers."""
from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from cliplab.errors import CliplabError
from cliplab.jsonable import jsonable

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network unless the user asks
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="cliplab: embed, zero-shot classify, search, compare, train and evaluate CLIP-style models.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

MODEL_HELP = "Model spec: lite (offline default), conse, preclip, auto, a checkpoint folder, or a HF CLIP id."
ModelOpt = typer.Option("lite", "--model", "-m", help=MODEL_HELP)
ModelsOpt = typer.Option(None, "--model", "-m", help=MODEL_HELP + " Repeat to compare models.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def guarded(fn: Callable) -> Callable:
    """Turn library errors (and Ctrl-C) into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CliplabError as e:
            fail(str(e))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
            fail(f"{e.strerror}: {e.filename}")

    return wrapper


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=jsonable) + "\n")


def table(title: str, columns: List[str], rows: List[List[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r])
    return t


def load_model(spec: Optional[str]):
    from cliplab.models import load_encoder

    with err.status(f"loading model {spec} …"):
        return load_encoder(spec or "lite")
