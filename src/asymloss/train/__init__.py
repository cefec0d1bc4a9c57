"""Training: protocols (configs), the engine, run records and checkpoints."""
from .checks import check_config
from .config import PROTOCOLS, TrainConfig, get_protocol, list_protocols
from .engine import train

__all__ = ["TrainConfig", "get_protocol", "list_protocols", "PROTOCOLS", "train", "check_config"]
