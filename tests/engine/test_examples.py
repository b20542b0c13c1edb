"""Built-in images: all load offline, and the painted styles are deterministic paintings."""

import numpy as np
import pytest
from PIL import Image

from stylelab import examples
from stylelab.examples import EXAMPLES, example_image, paint_mosaic, paint_shards, paint_swirls, resolve_image


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_is_an_rgb_picture_with_a_credit(name):
    image = example_image(name)
    assert image.mode == "RGB" and min(image.size) >= 256
    assert np.asarray(image).std() > 10, "a flat image teaches nothing"
    assert EXAMPLES[name][1]


@pytest.mark.parametrize("paint", [paint_swirls, paint_mosaic, paint_shards])
def test_paintings_are_deterministic_per_seed(paint):
    a, b, c = paint(size=96, seed=1), paint(size=96, seed=1), paint(size=96, seed=2)
    assert a.size == (96, 96)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_swirls_are_mostly_blue_and_mosaic_has_dark_lead():
    swirls = np.asarray(paint_swirls(size=128)).astype(float)
    assert (swirls[..., 2] > swirls[..., 0]).mean() > 0.6
    mosaic = np.asarray(paint_mosaic(size=128)).astype(float)
    dark = mosaic.max(axis=2) < 40
    assert 0.03 < dark.mean() < 0.4


def test_mosaic_panes_share_hues_with_their_neighbours():
    # independent random colours per pane turn every photo into confetti; a window's
    # design puts like colours together: panes one pane apart differ far less than
    # panes picked at random
    glass = np.asarray(paint_mosaic(size=512)).astype(float)[::8, ::8]  # (64, 64, 3), about 3 per pane
    lit = glass.max(axis=2) > 60  # not lead
    near = np.abs(glass[:, 3:] - glass[:, :-3]).sum(axis=2)[lit[:, 3:] & lit[:, :-3]].mean()
    shuffled = np.random.default_rng(0).permutation(glass.reshape(-1, 3))
    far = np.abs(glass.reshape(-1, 3) - shuffled).sum(axis=1)[lit.ravel() & (shuffled.max(axis=1) > 60)].mean()
    assert near < 0.75 * far  # 0.61 measured; independent colours give 0.99


def test_example_image_returns_a_copy_and_unknown_names_list_choices():
    image = example_image("astronaut")
    image.putpixel((0, 0), (1, 2, 3))
    assert example_image("astronaut").getpixel((0, 0)) != (1, 2, 3)
    with pytest.raises(KeyError, match="astronaut"):
        example_image("mona_lisa")


def test_resolve_image_tells_names_from_paths(tmp_path):
    assert isinstance(resolve_image("chelsea"), Image.Image)
    assert resolve_image(str(tmp_path / "mine.jpg")) == tmp_path / "mine.jpg"


def test_examples_script_writes_every_image(tmp_path, capsys):
    examples.main([str(tmp_path)])
    assert sorted(p.stem for p in tmp_path.glob("*.png")) == sorted(EXAMPLES)
