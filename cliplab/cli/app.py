"""The typer app and what every command shares: options, error handling, output helpers."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from cliplab.cli.vocabulary import Vocabulary
from cliplab.errors import EXIT_INTERRUPTED, EXIT_USER, CliplabError
from cliplab.jsonable import jsonable
from cliplab.settings import prefer_offline

prefer_offline()  # never reach for the network unless the user asks

app = typer.Typer(
    cls=Vocabulary,  # old option spellings keep working for a release (cli/vocabulary.py)
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="cliplab: embed, zero-shot classify, search, compare, train and evaluate CLIP-style models.",
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from cliplab import __version__

        sys.stdout.write(f"cliplab {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Print the version and exit."
    ),
) -> None:
    """cliplab: embed, zero-shot classify, search, compare, train and evaluate CLIP-style models."""
    from cliplab.settings import settings

    try:
        settings()  # a bad CLIPLAB_* variable is one line now, not a traceback mid-run
    except CliplabError as e:
        fail(str(e))


from cliplab.models.specs import HELP as MODEL_HELP  # noqa: E402 (one spelling of the spec grammar)

ModelOpt = typer.Option("lite", "--model", "-m", help=MODEL_HELP)
ModelsOpt = typer.Option(None, "--model", "-m", help=MODEL_HELP + " Repeat to compare models.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")
RuntimeOpt = typer.Option("auto", "--runtime", help="auto (ONNX Runtime when installed, else torch), torch or onnx.")
PrecisionOpt = typer.Option(
    "fp32", "--precision", help="fp32, or int8 (ONNX; towers that lose accuracy stay fp32 and the output says so)."
)
DeviceOpt = typer.Option("auto", "--device", help="auto (the GPU when the runtime can use one), cpu or cuda.")


def fail(message: str, code: int = EXIT_USER) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(str(message))}", markup=True, highlight=False)  # "[x]" is text
    raise typer.Exit(code)


def guarded(fn: Callable) -> Callable:
    """Turn library errors (and Ctrl-C) into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CliplabError as e:
            fail(str(e), e.exit_code)
        except KeyboardInterrupt as e:
            if str(e):  # e.g. an interrupted index: "interrupted: 904 of 1,000 … kept; run again to finish"
                err.print(str(e), markup=False)
                raise typer.Exit(EXIT_INTERRUPTED) from None
            fail("interrupted", EXIT_INTERRUPTED)
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as e:
            fail(f"{e.strerror}: {e.filename}")

    return wrapper


def check_out(path: Optional[Path], option: str = "--out", folder: bool = True) -> None:
    """Fail now, not after the work, when an output path cannot be written: a file where a folder
    is needed (or the other way round), or a read-only place."""
    from cliplab.errors import OutputError

    if path is None:
        return
    p = Path(path).expanduser()
    if p.exists() and folder != p.is_dir():
        raise OutputError(f"{option} {path}: " + ("is a file; give a folder" if folder else "is a folder; give a file"))
    for q in p.parents:
        if q.exists():
            if not q.is_dir():
                raise OutputError(f"{option} {path}: {q} is a file, not a folder")
            if not os.access(q, os.W_OK):
                raise OutputError(f"{option} {path}: {q} is not writable")
            return


def run_cli(args: Optional[List[str]] = None) -> None:
    """`app()`, with click's usage errors (bad option value, unknown command) as one `error:` line
    and exit 2 instead of a boxed panel; help and everything else as usual."""
    click_error = typer.BadParameter.__mro__[2]  # click's ClickException (typer carries its own click)
    try:
        rv = app(args=args, prog_name="cliplab", standalone_mode=False)
    except click_error as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `cliplab` / `cliplab eval` alone: the help
            e.show()
            sys.exit(0)
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        try:
            fail(f"{e.format_message()}{hint}".replace("\n", " "), e.exit_code)
        except typer.Exit as done:
            sys.exit(done.exit_code)
    except typer.Abort:
        err.print("aborted", markup=False)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=jsonable) + "\n")


def table(title: str, columns: List[str], rows: List[List[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r])
    return t


def check_model_spec(spec: str | None) -> str:
    """A bad spec is one `error:` line now, before any model code runs (`specs.parse`)."""
    from cliplab.models.specs import parse

    parse(spec)
    return (spec or "lite").strip()


def load_model(spec: Optional[str], runtime: str = "auto", precision: str = "fp32", device: str = "auto"):
    """The encoder a command runs: `spec` on the runtime/precision/device asked for (cliplab.runtime)."""
    from cliplab.runtime import load

    spec = check_model_spec(spec)
    with err.status(f"loading model {spec} …"):
        return load(
            spec or "lite",
            runtime=runtime,
            precision=precision,
            device=device,
            notify=lambda msg: err.print(msg, markup=False),
        )


def model_loader(runtime: str = "auto", precision: str = "fp32", device: str = "auto") -> Callable:
    """`load_model` with the runtime options bound: what a Collection calls to load its model."""
    return functools.partial(load_model, runtime=runtime, precision=precision, device=device)


def runtime_info(enc) -> dict:
    """{"runtime", "precision", "device"} of a loaded encoder, for every command's JSON output."""
    from cliplab.runtime import runtime_of

    return runtime_of(enc)


def runtime_text(enc) -> str:
    """e.g. 'onnx fp32' or 'onnx int8 (image fp32 (int8 kept fp32: CNN))', for text output."""
    from cliplab.runtime import runtime_label

    return runtime_label(enc)
