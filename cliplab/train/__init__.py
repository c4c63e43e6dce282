"""Contrastive training of dual encoders: frozen (or partly unfrozen) towers + small heads.

from cliplab.train import TrainConfig, train
result = train(TrainConfig(pairs=["captions.csv"], epochs=30), "runs/my-model")
load_encoder("runs/my-model")       # the result is a checkpoint folder every command accepts
"""

from cliplab.train.config import TrainConfig, TrainError
from cliplab.train.loop import TrainResult, train

__all__ = ["TrainConfig", "TrainError", "TrainResult", "train"]
