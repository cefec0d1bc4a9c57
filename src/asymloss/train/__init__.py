"""Training: protocols (configs), the engine, run records and checkpoints."""
from .checks import SmallSubsetWarning, check_config
from .config import PROTOCOLS, TrainConfig, get_protocol, list_protocols
from .engine import CheckpointError, RunDirError, RunState, inspect_run, restart_run, train

__all__ = ["TrainConfig", "get_protocol", "list_protocols", "PROTOCOLS", "train", "check_config",
           "inspect_run", "restart_run", "RunState", "RunDirError", "CheckpointError", "SmallSubsetWarning"]
