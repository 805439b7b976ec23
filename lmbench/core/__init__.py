"""The LM engine: pure PyTorch, no Hydra or MLflow. See ``LevenbergMarquardt``."""

from lmbench.core.callbacks import Callback, EpochInfo, MetricsCallback
from lmbench.core.damping import (
    DampingRule,
    GainRatioDamping,
    MarquardtDamping,
    SeedDamping,
    make_damping,
)
from lmbench.core.engines import (
    CacheEngine,
    InMemoryEngine,
    LMEngine,
    MatrixFreeEngine,
    StreamingEngine,
    plan_engine,
)
from lmbench.core.errors import (
    CheckpointError,
    DiskSpaceError,
    InvalidInputError,
    LMError,
    NonFiniteLossError,
    TempFolderError,
)
from lmbench.core.history import TrainingHistory
from lmbench.core.params import FlatParameters, get_weights_count
from lmbench.core.settings import TrainerSettings
from lmbench.core.trainer import LevenbergMarquardt, StoppingRules

__all__ = [
    "CacheEngine",
    "Callback",
    "CheckpointError",
    "DampingRule",
    "DiskSpaceError",
    "EpochInfo",
    "FlatParameters",
    "InMemoryEngine",
    "GainRatioDamping",
    "InvalidInputError",
    "LMEngine",
    "LMError",
    "LevenbergMarquardt",
    "MarquardtDamping",
    "MatrixFreeEngine",
    "MetricsCallback",
    "NonFiniteLossError",
    "SeedDamping",
    "StoppingRules",
    "StreamingEngine",
    "TempFolderError",
    "TrainerSettings",
    "TrainingHistory",
    "get_weights_count",
    "make_damping",
    "plan_engine",
]
