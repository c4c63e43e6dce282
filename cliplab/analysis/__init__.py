"""Analysis: compare models on one dataset (`analyze`), intermediate-layer features
(`extract_features`; the maps and their pooling live in `cliplab.models`).

    from cliplab.analysis import analyze
    summary = analyze("dataset/", models=["preclip", "lite"], out="results")
    summary["models"]["lite"]["gap"], summary["reading"]

Heavy pieces are imported lazily.
"""

from cliplab.lazy import lazy_getattr

_LAZY = {
    "analyze": "cliplab.analysis.run",
    "analyze_model": "cliplab.analysis.run",
    "load_dataset": "cliplab.analysis.dataset",
    "AnalysisDataset": "cliplab.analysis.dataset",
    "extract_features": "cliplab.analysis.features",
    "LayerFeatures": "cliplab.models.features.layer_features",
}

__all__ = list(_LAZY)

__getattr__ = lazy_getattr("cliplab.analysis", _LAZY)
