"""Search: the query model (expressions of weighted text, image and like:ID terms) and running a
query on an index. Used alike by the CLI, the server and the Python API.

    from cliplab.search import parse, run
    terms = parse('"beach" + "sunset" - "people"')
    hits = run(collection, terms, k=10)
"""

from cliplab.lazy import lazy_getattr

_EXPORTS = {
    "Term": "cliplab.search.expression",
    "parse": "cliplab.search.expression",
    "combine": "cliplab.search.expression",
    "run": "cliplab.search.query",
    "query_vector": "cliplab.search.query",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr("cliplab.search", _EXPORTS)
