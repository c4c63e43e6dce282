"""Indexer run as a subprocess by test_crash: `python -m tests.index.crash_child FOLDER INDEX KILL_AFTER DELAY`.

Prints `progress DONE TOTAL` after each committed batch; with KILL_AFTER > 0 it SIGKILLs itself right
after that many commits (no cleanup, no atexit, no final transaction).
"""

import os
import signal
import sys

from cliplab.index import Collection
from tests.index.helpers import TinyEncoder

folder, index_dir, kill_after, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
commits = 0


def on_commit(done, total):
    global commits
    commits += 1
    print(f"progress {done} {total}", flush=True)
    if kill_after and commits >= kill_after:
        os.kill(os.getpid(), signal.SIGKILL)


Collection(folder, index_dir=index_dir, encoder=TinyEncoder(delay), batch_size=2).update(progress=on_commit)
print("finished", flush=True)
