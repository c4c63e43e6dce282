"""The real `cliplab serve` command, run as a subprocess with the toy model standing in for a real one:
`python -m tests.serve.serve_child FOLDER --model toy --port 0 ...` (same CLI, uvicorn, signals)."""

import sys

import cliplab.cli.serve as serve_cli
from cliplab.cli import main
from tests.helpers import ToyEncoder

serve_cli._loader = lambda *runtime: lambda spec: ToyEncoder()  # the only difference from `cliplab serve`
sys.argv = ["cliplab", "serve", *sys.argv[1:]]
main()
