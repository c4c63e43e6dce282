"""`cliplab serve`: a search service over collections (FastAPI).

    from cliplab.serve import open_state, create_app
    state = open_state(["~/Pictures"])          # indexes what changed, opens each collection
    app = create_app(state)                      # routes: see cliplab/serve/API.md

FastAPI is imported only by `create_app` (in app.py), so importing this package stays cheap.
"""

from cliplab.serve.state import ServerState, Settings, open_state


def create_app(state: ServerState):
    from cliplab.serve.app import create_app as _create

    return _create(state)


__all__ = ["ServerState", "Settings", "create_app", "open_state"]
