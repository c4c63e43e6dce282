"""Analysis: compare models on one dataset (`analyze`), intermediate-layer features
(`extract_features`; the maps and their pooling live in `cliplab.models`).

    from cliplab.analysis import analyze
    summary = analyze("dataset/", models=["preclip", "lite"], out="results")
    summary["models"]["lite"]["gap"], summary["reading"]

Heavy pieces are imported lazily.
"""

_LAZY = {
    "analyze": "cliplab.analysis.run",
    "analyze_model": "cliplab.analysis.run",
    "load_dataset": "cliplab.analysis.dataset",
    "AnalysisDataset": "cliplab.analysis.dataset",
    "extract_features": "cliplab.analysis.features",
    "LayerFeatures": "cliplab.models.features.layer_features",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cliplab.analysis' has no attribute {name!r}")
