"""Evaluation: pure metrics (`cliplab.eval.metrics`) and task runners that mirror `cliplab eval …`.

    from cliplab.eval import evaluate_zeroshot, evaluate_retrieval, evaluate_probe, evaluate_instance
    evaluate_zeroshot("conse", "cifar10-dev/labels.csv", templates="clip80")["top1"]

Runners are imported lazily so `from cliplab.eval.metrics import retrieval_metrics` stays light.
"""

from cliplab.eval.metrics import classification_metrics, ranking_metrics, retrieval_metrics
from cliplab.lazy import lazy_getattr

_RUNNERS = {
    "evaluate_zeroshot": "cliplab.eval.zeroshot",
    "evaluate_retrieval": "cliplab.eval.retrieval",
    "evaluate_probe": "cliplab.eval.probe",
    "evaluate_instance": "cliplab.eval.instance",
}

__all__ = ["classification_metrics", "ranking_metrics", "retrieval_metrics", *_RUNNERS]

__getattr__ = lazy_getattr("cliplab.eval", _RUNNERS)
