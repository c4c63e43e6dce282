"""`cliplab serve --watch`: a file dropped into the folder becomes searchable while serving."""

from __future__ import annotations

import time

from PIL import Image

from cliplab.serve import open_state
from cliplab.serve.query import search
from cliplab.serve.watch import Watcher
from tests.helpers import make_image
from tests.serve.conftest import toy_loader


def test_watcher_indexes_new_files(pics):
    state = open_state([pics], model="toy", loader=toy_loader)
    updates = []
    watcher = Watcher(state, on_update=lambda folder, stats: updates.append(stats), debounce_ms=100)
    watcher.start()
    try:
        time.sleep(0.5)  # let the watcher arm itself
        make_image(pics / "later" / "yellow.png", size=(20, 20), color=(240, 240, 10))
        src = state.sources["pics"]
        yellow = state.encoders.get("toy").encoder.encode_images([Image.new("RGB", (20, 20), (240, 240, 10))])[0]
        deadline = time.monotonic() + 30
        top = None
        while time.monotonic() < deadline:
            top = search(src, yellow, 1)[0].path
            if top == "later/yellow.png":
                break
            time.sleep(0.2)
        assert top == "later/yellow.png"
        assert updates and updates[-1].new == 1
    finally:
        watcher.stop()
        state.close()
