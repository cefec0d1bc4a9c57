"""Training: protocols (configs), the engine, run records and checkpoints."""
from .checks import SmallSubsetWarning, check_config
from .config import PROTOCOLS, TrainConfig, get_protocol, list_protocols
from .crossval import cross_val_predict, estimate_noise
from .engine import CheckpointError, RunDirError, RunState, inspect_run, restart_run, train
from .pack import train_pack

__all__ = ["TrainConfig", "get_protocol", "list_protocols", "PROTOCOLS", "train", "check_config",
           "inspect_run", "restart_run", "RunState", "RunDirError", "CheckpointError", "SmallSubsetWarning"]
__all__ += ["cross_val_predict", "estimate_noise"]  # k-fold predictions and the noise estimate
__all__ += ["train_pack"]  # several compatible runs trained as one packed model (docs/packing.md)
