"""One CLI vocabulary: what each option name means, and the old spellings kept for one release.

`CONCEPTS` is the table every command is checked against (tests/cli/test_vocabulary.py walks the
command tree; docs/cli.md shows it). `DEPRECATED` maps spellings renamed away onto their canonical
form: `Vocabulary`, the click group class of the app and its sub-groups, rewrites them before click
parses the command and prints one `note:` line per old spelling on stderr. They are not declared as
options, so --help never shows them.
"""

from __future__ import annotations

from typing import Callable, Optional

import typer
from typer.core import TyperGroup

# concept: (canonical spelling, its short flag or None, long spellings no command may declare).
# An UPPERCASE canonical is a positional argument (what the command works on). A short flag not
# listed here is declared nowhere, and a listed one only with its own long name.
CONCEPTS: dict[str, tuple[str, Optional[str], tuple[str, ...]]] = {
    "images to work on": ("INPUTS", None, ("--images", "--inputs", "--input", "--files", "--data")),
    "labelled data set (labels.csv / ImageFolder)": ("DATA", None, ("--data", "--dataset")),
    "how many results": ("--top-k", "-k", ("--top", "--topk", "--k", "--n", "--num")),
    "minimum similarity": ("--threshold", None, ("--thresh", "--min-score", "--cutoff")),
    "prompt templates": ("--templates", "-t", ("--template", "--prompt-templates")),
    "zero-shot labels (inline list or file)": ("--labels", "-l", ("--label", "--classes")),
    "texts (inline list or file)": ("--texts", None, ("--text", "--prompts", "--captions-file")),
    "feature-map pooling": ("--pooling", None, ("--pool",)),
    "PCA dimensions": ("--pca", None, ("--pca-dim", "--pca-dims", "--n-components")),
    "k-means clusters": ("--clusters", None, ("--n-clusters", "--num-clusters")),
    "intermediate layer": ("--layer", None, ("--block",)),
    "list only, change nothing": ("--dry-run", None, ("--dryrun", "--simulate")),
    "model spec": ("--model", "-m", ("--models", "--encoder")),
    "output file or folder": ("--out", "-o", ("--output", "--out-dir", "--outdir")),
    "machine-readable document": ("--json", None, ("--as-json",)),
    "row format on stdout": ("--format", None, ("--output-format", "--fmt")),
    "files layout on disk (embed)": ("--layout", None, ()),
    "paths only, one per line": ("--paths", "-f", ("--paths-only",)),
    "paths only, NUL-separated": ("--print0", "-0", ("--null",)),
    "folder to search": ("--dir", "-d", ("--folder",)),
    "query image": ("--image", "-i", ("--query-image",)),
    "index folder": ("--index", None, ("--index-dir",)),
    "images per model call": ("--batch-size", None, ("--bs", "--batch")),
    "no questions asked": ("--yes", "-y", ("--force",)),
    "captions file (CSV/JSONL)": ("--pairs", None, ("--captions-csv",)),
}

ARG = "ARG"  # DEPRECATED target: the value becomes the command's positional argument

# command path: {old spelling: canonical option, or ARG}
DEPRECATED: dict[str, dict[str, str]] = {
    "embed": {"--format": "--layout"},
    "similarity": {"--images": ARG},
    "search": {"-n": "--top-k"},
    "duplicates": {"-t": "--threshold"},
    "analyze": {"-k": "--clusters"},
    "features": {"-l": "--layer", "-p": "--pooling"},
    "eval zeroshot": {"--data": ARG, "-d": ARG},
    "eval probe": {"--data": ARG, "-d": ARG},
    "eval retrieval": {"--pairs": ARG, "-p": ARG},
    "eval instance": {"--images": ARG, "-i": ARG, "--pca-dim": "--pca"},
    "indexes prune": {"-n": "--dry-run"},
}


def _options(command) -> dict[str, object]:
    return {o: p for p in command.params if getattr(p, "param_type_name", "") == "option" for o in p.opts}


def _takes_value(param) -> bool:
    return param is not None and not getattr(param, "is_flag", False) and not getattr(param, "count", False)


def _argument_name(command) -> str:
    args = [p for p in command.params if getattr(p, "param_type_name", "") == "argument"]
    return (args[0].metavar or args[0].name.upper()) if args else "ARG"


def _note(path: str, command, old: str, new: str) -> str:
    if new == ARG:
        name = _argument_name(command)
        return f"note: {old} is deprecated here; give {name} as an argument (cliplab {path} {name} …)"
    shorts = [o for o in getattr(_options(command).get(new), "opts", []) if not o.startswith("--")]
    return f"note: {old} is deprecated here; use {new}" + (f" ({', '.join(shorts)})" if shorts else "")


def rewrite(path: str, command, args: list[str], note: Callable[[str], None] | None = None) -> list[str]:
    """`args` of command `path` with its deprecated spellings replaced (one note per spelling)."""
    table = DEPRECATED.get(path)
    if not table:
        return list(args)
    opts = _options(command)
    note = note or (lambda line: typer.echo(line, err=True))
    out: list[str] = []
    noted: set[str] = set()
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            out.extend(args[i:])
            break
        old, value = _match(tok, table, opts)
        if old is None:
            out.append(tok)
            if tok in opts and _takes_value(opts[tok]) and i + 1 < len(args):
                out.append(args[i + 1])  # an option's value is never rewritten
                i += 1
            i += 1
            continue
        new = table[old]
        if old not in noted:
            note(_note(path, command, old, new))
            noted.add(old)
        if new == ARG:
            if value is not None:
                out.append(value)  # otherwise the next token, the old option's value, stays as it is
        elif value is not None:
            out.append(f"{new}={value}")
        else:
            out.append(new)
            if _takes_value(opts.get(new)) and i + 1 < len(args):
                out.append(args[i + 1])
                i += 1
        i += 1
    return out


def _match(tok: str, table: dict[str, str], opts: dict) -> tuple[Optional[str], Optional[str]]:
    """(old spelling, attached value) when `tok` is a deprecated spelling: `-n`, `--data=x`, `-n5`."""
    if tok in table:
        return tok, None
    if tok.startswith("--") and "=" in tok:
        name, value = tok.split("=", 1)
        return (name, value) if name in table else (None, None)
    if tok.startswith("-") and not tok.startswith("--") and len(tok) > 2 and tok[:2] in table:
        new = table[tok[:2]]
        if new == ARG or _takes_value(opts.get(new)):
            return tok[:2], tok[2:]
    return None, None


def _names(ctx) -> list[str]:
    names = []
    while ctx is not None and ctx.parent is not None:  # the root's name is the program's
        names.append(ctx.info_name)
        ctx = ctx.parent
    return names[::-1]


class Vocabulary(TyperGroup):
    """The app's group class: rewrites a sub-command's deprecated spellings (DEPRECATED) before
    click parses them, so old command lines keep working for one release."""

    def resolve_command(self, ctx, args):
        name, cmd, rest = super().resolve_command(ctx, args)
        path = " ".join([*_names(ctx), name or ""])
        if cmd is not None and not ctx.resilient_parsing:
            rest = rewrite(path, cmd, rest)
        return name, cmd, rest


POOLINGS = ("gap", "mac", "gem", "rmac")  # the names printed; avg/global/mean, max and r-mac are accepted too


def pooling_option(name: str, none_ok: bool = False) -> str:
    """--pooling's canonical name (avg → gap, max → mac), checked before any model loads."""
    from cliplab.errors import CliplabError

    if none_ok and str(name).lower() == "none":
        return "none"
    from cliplab.models.features.layer_features import pooling_name

    try:
        return pooling_name(name)
    except CliplabError:
        choices = ("none",) * none_ok + POOLINGS
        raise CliplabError(f"--pooling {name!r}: choose one of {', '.join(choices)}") from None
