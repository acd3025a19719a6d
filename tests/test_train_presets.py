"""The six recipes as the spec states them, their conversion to steps, the sample stream,
and how settings are resolved. No training here (see test_train_loop.py)."""
import json
import math

import pytest

from durn.train import PRESETS, get_preset, make_config, plan
from durn.train.config import parse_gaussian, read_config_file, resume_conflicts
from durn.train.presets import L1_11, L2, SSIM_L1, Schedule, Stage
from durn.train.stream import SampleStream, ShardedBatches

# ../shared/spec/architectures.md, "Training settings reported by the authors".
SPEC = {
    "durn_p_gaussian": ("durn_p", 100, 64, [(3000, L2, "step", 1e-3, (500, 1000, 1500, 2500), 0.1)]),
    "durn_p_real": ("durn_p_real", 30, 128, [(3500, SSIM_L1, "step", 1e-4, (1000, 2000), 0.1)]),
    "durn_u_gopro": ("durn_u", 10, 256, [(5000, SSIM_L1, "step", 1e-4, (2000, 4000), 0.1)]),
    "durn_us_reside": ("durn_us", 40, 256, [(3000, SSIM_L1, "step", 1e-4, (700, 1400), 0.1)]),
    "durn_s_didmdn": ("durn_s", 40, 64, [(2000, SSIM_L1, "cosine", 1e-4, (), 0.1)]),
    "durn_s_p_raindrop": ("durn_s_p", 24, 256, [(4000, SSIM_L1, "step", 1e-4, (2000,), 0.5),
                                                (100, L1_11, "constant", 1e-5, (), 0.1)]),
}


def test_presets_match_the_spec_table():
    assert set(PRESETS) == set(SPEC)
    for name, (network, batch, crop, stages) in SPEC.items():
        p = PRESETS[name]
        assert (p.network, p.batch_size, p.crop) == (network, batch, crop), name
        got = [(s.epochs, s.loss, s.schedule.kind, s.schedule.lr, s.schedule.milestones, s.schedule.gamma)
               for s in p.stages]
        assert got == stages, name
    assert PRESETS["durn_s_didmdn"].hflip and not any(p.hflip for n, p in PRESETS.items() if n != "durn_s_didmdn")
    p = PRESETS["durn_p_gaussian"]
    assert (p.reuse, p.noise_sigmas, p.gray) == (10, (30.0, 50.0, 70.0), True)
    assert all(q.reuse == 1 and q.noise_sigmas is None for n, q in PRESETS.items() if n != "durn_p_gaussian")


def test_network_names_select_their_preset():
    assert get_preset("durn_u").name == "durn_u_gopro"
    with pytest.raises(KeyError, match="durn_p_gaussian"):
        get_preset("durn_x")


def test_full_recipe_in_steps_durn_p():
    # BSD gray 300 + 200 = 500 images, batch 100, each batch 10 steps: 50 steps an epoch.
    p = PRESETS["durn_p_gaussian"]
    pl = plan(p.stages, dataset_size=500, batch_size=100, reuse=10)
    assert pl.steps_per_epoch == 50 and pl.total_steps == 150_000
    (s,) = pl.stages
    assert s.milestones == (25_000, 50_000, 75_000, 125_000)
    assert pl.lr_at(0) == 1e-3 and pl.lr_at(24_999) == 1e-3
    assert pl.lr_at(25_000) == pytest.approx(1e-4, rel=1e-12)
    assert pl.lr_at(149_999) == pytest.approx(1e-7, rel=1e-12)


def test_full_recipe_two_stages_raindrop():
    p = PRESETS["durn_s_p_raindrop"]
    pl = plan(p.stages, dataset_size=861, batch_size=24)   # RainDrop train: 861 pairs
    spe = 861 / 24
    one, two = pl.stages
    assert (one.start, one.steps) == (0, round(4000 * spe))
    assert (two.start, two.steps) == (one.steps, round(100 * spe))
    assert one.milestones == (round(2000 * spe),)
    assert pl.lr_at(one.milestones[0] - 1) == 1e-4 and pl.lr_at(one.milestones[0]) == 5e-5
    assert pl.lr_at(one.steps) == 1e-5 and pl.stage_at(one.steps).loss == L1_11
    assert pl.stage_at(one.steps - 1).loss == SSIM_L1


def test_cosine_schedule():
    pl = plan(PRESETS["durn_s_didmdn"].stages, steps=8)
    lrs = [pl.lr_at(i) for i in range(8)]
    assert lrs[0] == 1e-4
    assert lrs[4] == pytest.approx(0.5e-4, rel=1e-12)        # halfway
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] > 0


def test_warmup_ramps_each_stage_then_follows_its_schedule():
    stages = PRESETS["durn_s_p_raindrop"].stages  # two stages: each starts a fresh Adam
    bare, warm = plan(stages, steps=400), plan(stages, steps=400, warmup=10)
    first, second = warm.stages
    assert [warm.lr_at(i) for i in range(3)] == pytest.approx([1e-5, 2e-5, 3e-5], rel=1e-12)
    assert warm.lr_at(9) == bare.lr_at(9) == 1e-4             # full rate from the 10th step
    assert all(warm.lr_at(i) == bare.lr_at(i) for i in range(9, first.steps))
    assert warm.lr_at(second.start) == pytest.approx(bare.lr_at(second.start) / 10, rel=1e-12)
    cosine = plan(PRESETS["durn_s_didmdn"].stages, steps=100, warmup=20)
    lrs = [cosine.lr_at(i) for i in range(100)]
    assert all(a < b for a, b in zip(lrs[:19], lrs[1:20]))    # rising through the warm-up
    assert lrs[19] == pytest.approx(1e-4 * 0.5 * (1 + math.cos(math.pi * 19 / 100)), rel=1e-12)
    with pytest.raises(ValueError, match="warmup"):
        plan(stages, steps=10, warmup=-1)


def test_compressed_recipe_keeps_fractions_and_every_stage():
    p = PRESETS["durn_s_p_raindrop"]
    pl = plan(p.stages, steps=2)
    assert [(s.start, s.steps) for s in pl.stages] == [(0, 1), (1, 1)]
    pl = plan(p.stages, steps=4100)
    assert [(s.start, s.steps, s.milestones) for s in pl.stages] == [(0, 4000, (2000,)), (4000, 100, ())]
    pl = plan(PRESETS["durn_p_gaussian"].stages, steps=300, lr=2e-3)
    assert pl.stages[0].milestones == (50, 100, 150, 250) and pl.lr_at(0) == 2e-3
    with pytest.raises(ValueError):
        plan(p.stages, steps=0)
    with pytest.raises(ValueError, match="size"):
        plan(p.stages)
    with pytest.raises(ValueError):
        Schedule("linear", 1e-3)


def test_split_is_exact():
    pl = plan((Stage(1, L2, Schedule("constant", 1)),) * 3, steps=10)
    assert [s.steps for s in pl.stages] == [4, 3, 3] and pl.total_steps == 10


def test_stream_is_a_pure_function_of_seed_and_position():
    a, b = SampleStream(7, seed=3), SampleStream(7, seed=3)
    positions = list(range(40))
    assert [a.item(p) for p in positions] == [b.item(p) for p in reversed(positions)][::-1]
    for epoch in range(5):  # each epoch is a permutation
        assert sorted(a.index(epoch * 7 + i) for i in range(7)) == list(range(7))
    assert [a.index(p) for p in range(7)] != [a.index(p) for p in range(7, 14)]
    assert [SampleStream(7, seed=4).index(p) for p in range(14)] != [a.index(p) for p in range(14)]


@pytest.mark.parametrize("world", [2, 3])
def test_shards_partition_the_global_batch(world):
    stream = SampleStream(10, seed=0)
    single = list(ShardedBatches(stream, 6, rank=0, world_size=1, start=2, stop=7))
    shards = [list(ShardedBatches(stream, 6, rank=r, world_size=world, start=2, stop=7)) for r in range(world)]
    for b in range(5):
        assert sum((s[b] for s in shards), []) == single[b]
    resumed = list(ShardedBatches(stream, 6, rank=0, world_size=1, start=4, stop=7))
    assert resumed == single[2:]
    with pytest.raises(ValueError, match="multiple of 4"):
        ShardedBatches(stream, 6, rank=0, world_size=4, start=0, stop=1)


def test_config_resolution_and_errors(tmp_path):
    c = make_config({"preset": "durn_s", "out": "r"}, batch_size=2)
    assert (c.network, c.global_batch, c.crop_size, c.use_hflip, c.steps_per_batch) == ("durn_s", 2, 64, True, 1)
    c = make_config({"preset": "durn_p_gaussian", "out": "r", "degrade": "gaussian:15,25"})
    assert c.noise_sigmas == (15.0, 25.0) and c.steps_per_batch == 10
    c = make_config({"preset": "durn_p_gaussian", "out": "r", "degrade": "blur"})
    assert c.noise_sigmas is None and c.steps_per_batch == 1
    with pytest.raises(ValueError, match="unknown training settings"):
        make_config({"out": "r", "batchsize": 3})
    with pytest.raises(ValueError, match="out"):
        make_config({})
    with pytest.raises(ValueError, match="ema"):
        make_config({"out": "r", "ema": 1.5})
    with pytest.raises(ValueError, match="warmup"):
        make_config({"out": "r", "warmup": -5})
    with pytest.raises(ValueError, match="sigmas"):
        parse_gaussian("gaussian:a,b")
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"preset": "durn_u", "batch-size": 3}))
    assert read_config_file(f) == {"preset": "durn_u", "batch_size": 3}
    t = tmp_path / "c.toml"
    t.write_text('preset = "durn_us"\nsteps = 5\n')
    assert read_config_file(t) == {"preset": "durn_us", "steps": 5}
    saved = make_config({"out": "r", "batch_size": 4}).to_dict()
    assert resume_conflicts(saved, make_config({**saved, "device": "cpu", "workers": 2})) == []
    assert resume_conflicts(saved, make_config({**saved, "batch_size": 8})) == ["batch_size: run has 4, now 8"]


def test_schedule_override_replaces_every_stage_keeping_base_rates():
    from durn.train.loop import _overridden

    stages = get_preset("durn_s_p_raindrop").stages
    cos = plan(_overridden(stages, loss=None, schedule="cosine"), steps=1000)
    assert [s.kind for s in cos.stages] == ["cosine", "cosine"]
    first, second = cos.stages
    assert cos.lr_at(0) == 1e-4 and cos.lr_at(first.steps // 2) == pytest.approx(0.5e-4)
    assert cos.lr_at(first.steps) == 1e-5  # the second stage starts at its own base rate
    const = plan(_overridden(stages, loss="l1", schedule="constant"), steps=1000)
    assert {s.loss for s in const.stages} == {"l1"}
    assert const.lr_at(0) == const.lr_at(first.steps - 1) == 1e-4
    compressed = plan(get_preset("durn_p_gaussian").stages, steps=4000)
    assert compressed.lr_at(700) == pytest.approx(1e-4)  # why the override exists: decayed by step 667
    with pytest.raises(ValueError, match="schedule must be one of"):
        make_config(out="x", schedule="linear")
