"""Reading inputs: images (robust decoding), file listings, datasets, the shared data folder."""

from cliplab.data.images import IMAGE_EXTENSIONS, list_images, load_image

__all__ = ["IMAGE_EXTENSIONS", "list_images", "load_image"]
