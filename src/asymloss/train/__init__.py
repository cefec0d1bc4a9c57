"""Training: protocols (configs), the engine, run records and checkpoints."""
from .checks import check_config
from .config import PROTOCOLS, TrainConfig, get_protocol, list_protocols
from .engine import train
from .crossval import cross_val_predict, estimate_noise

__all__ = ["TrainConfig", "get_protocol", "list_protocols", "PROTOCOLS", "train", "check_config"]
__all__ += ["cross_val_predict", "estimate_noise"]  # k-fold predictions and the noise estimate
