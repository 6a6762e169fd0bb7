"""Official MMDetection checkpoints: download (``download``), safe reading (``safe_load``) and
the check that a checkpoint fits its model (``checks``)."""

from .checks import check_state_dict
from .download import checkpoint_cache_dir, checkpoint_file_name, download_checkpoint, sha256_prefix_from_url
from .safe_load import INERT_METADATA_GLOBALS, load_checkpoint_file, load_state_dict

__all__ = ["INERT_METADATA_GLOBALS", "check_state_dict", "checkpoint_cache_dir", "checkpoint_file_name",
           "download_checkpoint", "load_checkpoint_file", "load_state_dict", "sha256_prefix_from_url"]
