"""`cliplab index|search` with a slow tiny model, for test_crash to interrupt the way Ctrl-C does (SIGINT):
`python -m tests.index.interrupt_child COMMAND FOLDER INDEX DELAY`."""

import sys

import cliplab.cli.index as cli_index
from cliplab.cli.app import run_cli
from tests.index.helpers import TinyEncoder

command, folder, index_dir, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
cli_index.load_model = lambda spec, *a, **k: TinyEncoder(delay)
args = ["index", folder] if command == "index" else ["search", "a red car", "--dir", folder]
run_cli([*args, "--index", index_dir, "--batch-size", "2"] if command == "index" else [*args, "--index", index_dir])
