"""`cliplab index`'s library call in another process, with the toy model and a slow batch, so a
server can be queried while it runs: `python -m tests.serve.index_child FOLDER DELAY`."""

import sys
import time

from cliplab.index import Collection
from tests.helpers import ToyEncoder


class SlowToy(ToyEncoder):
    name = "toy"
    image_batch_size = 2

    def encode_image_batch(self, batch):
        time.sleep(float(sys.argv[2]))
        return super().encode_image_batch(batch)


def on_commit(done, total):
    print(f"progress {done} {total}", flush=True)


Collection(sys.argv[1], model="toy", loader=lambda spec: SlowToy(), batch_size=2).update(progress=on_commit)
print("finished", flush=True)
