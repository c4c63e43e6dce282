"""The zoo's tests pull and time the same tiny random-weight CLIP the model tests build."""

from tests.models.conftest import clip_config_dir, tiny_clip_dir  # noqa: F401  (fixtures)
