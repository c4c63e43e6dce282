"""The packaged ImageNet resources: class names, CLIP templates, WordNet ancestors."""

from __future__ import annotations

from cliplab.models.core.imagenet import clip80_templates, imagenet_classnames, imagenet_hypernyms


def test_class_names_and_templates():
    names = imagenet_classnames()
    assert len(names) == 1000 and names[0] == "tench"
    assert len(clip80_templates()) == 80 and "a photo of a {}." in clip80_templates()


def test_hypernyms_follow_wordnet_nearest_first():
    assert imagenet_hypernyms("n03796401")[:3] == ["van", "truck", "motor vehicle"]  # moving van
    assert imagenet_hypernyms("n02389026", max_up=1) == ["horse"]  # common sorrel horse
    assert "cat" in imagenet_hypernyms("n02123045", max_up=3)  # tabby cat
    # `min_depth` drops the general words that name everything
    everything = imagenet_hypernyms("n02123045", max_up=99)
    assert "animal" in everything and "organism" in everything
    assert not {"animal", "organism"} & set(imagenet_hypernyms("n02123045", min_depth=7, max_up=99))
    assert imagenet_hypernyms("n99999999") == []
