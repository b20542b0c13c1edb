"""stylelab.speed: the engine runs the way a probe measured fastest on this CPU, remembers it, and obeys the
environment's overrides; bfloat16 only where the CPU has it."""

import json

import pytest
import torch

from solutions import style_transfer as losses
from stylelab import speed
from stylelab.backbones import load_backbone
from stylelab.examples import resolve_image
from stylelab.images import load_image
from stylelab.transfer import PRESETS, run_transfer


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """An empty cache, no overrides, and timings this test decides (the probe's speed is not under test)."""
    monkeypatch.setenv("STYLELAB_CACHE", str(tmp_path))
    monkeypatch.delenv("STYLELAB_PRECISION", raising=False)
    monkeypatch.delenv("STYLELAB_CHANNELS_LAST", raising=False)
    timed = []

    def seconds(kind, precision, channels_last, repeats=3):
        timed.append((precision, channels_last))
        return {("bfloat16", False): 1.0, ("bfloat16", True): 2.0, ("float32", True): 3.0}.get(
            (precision, channels_last), 4.0)

    monkeypatch.setattr(speed, "seconds_per_pass", seconds)
    return timed


def test_the_fastest_candidate_is_chosen_once_and_remembered(fresh, monkeypatch):
    monkeypatch.setattr(speed, "native_bfloat16", lambda: True)
    assert speed.choice() == {"precision": "bfloat16", "channels_last": False}
    assert len(fresh) == 2 * 4  # every candidate, twice, in turns
    assert speed.choice() == {"precision": "bfloat16", "channels_last": False} and len(fresh) == 8  # cached
    stored = json.loads(speed.cache_path().read_text())
    assert list(stored) == [speed._key("reference")] and torch.__version__ in speed._key("reference")


def test_the_fast_network_chooses_its_precision_on_its_own_probe(fresh, monkeypatch):
    monkeypatch.setattr(speed, "native_bfloat16", lambda: True)
    assert speed.choice("fast") == {"precision": "bfloat16", "channels_last": True}
    assert sorted(fresh) == [("bfloat16", True)] * 2 + [("float32", True)] * 2
    with pytest.raises(ValueError, match="reference, student, fast"):
        speed.choice("gpu")


@pytest.mark.parametrize("kind", ["reference", "fast"])
def test_a_real_probe_times_each_candidate(kind):
    for precision, channels_last in speed.candidates(kind):
        assert 0 < speed.seconds_per_pass(kind, precision, channels_last, repeats=1) < 30


def test_no_bfloat16_where_the_cpu_lacks_it_and_students_run_contiguous(fresh, monkeypatch):
    monkeypatch.setattr(speed, "native_bfloat16", lambda: False)
    assert speed.choice() == {"precision": "float32", "channels_last": True}
    assert {pair[0] for pair in fresh} == {"float32"}
    assert speed.choice("student") == {"precision": "float32", "channels_last": False}


def test_the_environment_overrides_the_probe(fresh, monkeypatch):
    monkeypatch.setattr(speed, "native_bfloat16", lambda: True)
    monkeypatch.setenv("STYLELAB_PRECISION", "float32")
    monkeypatch.setenv("STYLELAB_CHANNELS_LAST", "1")
    assert speed.choice() == {"precision": "float32", "channels_last": True} and fresh == []  # no probe
    assert speed.choice("student") == {"precision": "float32", "channels_last": False}
    monkeypatch.setenv("STYLELAB_PRECISION", "fp16")
    with pytest.raises(ValueError, match="STYLELAB_PRECISION='fp16': give float32 or bfloat16"):
        speed.choice()


def test_native_bfloat16_reads_the_cpus_flags(monkeypatch):
    monkeypatch.setattr(speed, "cpu", lambda: ("Some CPU", ["avx2", "avx512f"]))
    assert not speed.native_bfloat16()
    monkeypatch.setattr(speed, "cpu", lambda: ("Some CPU", ["avx2", "avx512f", "avx512_bf16"]))
    assert speed.native_bfloat16() == torch.backends.mkldnn.enabled


def test_both_precisions_paint_equally_well():
    """The float32 path and the bfloat16 path, forced on any CPU, each judged in float32 by the same
    network: both paint (the style loss falls below a fifth of the photo's) and their objectives agree
    within 10%, so the quality checks hold for either."""
    preset = PRESETS["vgg19"]
    net = load_backbone("vgg19", layers=(preset["content_layer"],) + preset["style_layers"],
                        padding="replicate")  # the engine's objective, in float32
    content_layer, style_layers = net.index(preset["content_layer"]), [net.index(n) for n in preset["style_layers"]]
    photo = load_image(resolve_image("astronaut"), 64, net.preprocess)
    with torch.no_grad():
        grams = [losses.gram_matrix(f) for f in
                 [losses.extract_features(load_image(resolve_image("swirls"), 64, net.preprocess), net.cnn)[k]
                  for k in style_layers]]
        target = losses.extract_features(photo, net.cnn)[content_layer]

    def judged(img):
        with torch.no_grad():
            feats = losses.extract_features(img, net.cnn)
            return (float(losses.content_loss(preset["content_weight"], feats[content_layer], target)),
                    float(losses.style_loss(feats, style_layers, grams, preset["style_weights"])))

    runs = {p: run_transfer("astronaut", "swirls", size=64, num_iters=30, precision=p, channels_last=False)
            for p in ("float32", "bfloat16")}
    assert runs["bfloat16"].settings["precision"] == "bfloat16"
    photo_style = judged(photo)[1]
    single, half = judged(runs["float32"].img), judged(runs["bfloat16"].img)
    assert single[1] < 0.2 * photo_style and half[1] < 0.2 * photo_style
    assert 1 / 1.1 < sum(half) / sum(single) < 1.1
