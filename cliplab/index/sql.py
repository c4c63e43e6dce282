"""SQL pieces shared by the catalog's queries and the keyword index: where a path lies."""

from __future__ import annotations


def like_prefix(under: str | None) -> str | None:
    """SQL LIKE pattern for every path below a sub-folder (with LIKE's wildcards escaped)."""
    if not under:
        return None
    esc = under.strip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return esc + "/%"


def where_clause(under: str | None, glob: str | None, alias: str = "f") -> tuple[str, list]:
    clauses, args = [], []
    if under:
        clauses.append(f"{alias}.path LIKE ? ESCAPE '\\'")
        args.append(like_prefix(under))
    if glob:
        clauses.append(f"{alias}.path GLOB ?")
        args.append(glob)
    return (" AND " + " AND ".join(clauses)) if clauses else "", args
