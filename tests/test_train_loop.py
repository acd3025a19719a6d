"""The training loop on small real photographs (scikit-image's, see conftest's
``train_photos``), on CPU: every preset, durn_p's recipe, checkpoints, the run folder,
validation and the command line. Crops of 16-32 px and batches of 1-4 keep it cheap.

Training tests run torch on one thread: on a shared 2-core machine two spinning OpenMP
threads were measured up to 10x slower than one (0.5 s against 4-6 s a durn_p step)."""
import json
import math
import os
import shutil

import pytest
import torch

import durn
from durn.cli import main as cli_main
from durn.train import PRESETS, get_preset, plan, train
from durn.train import checkpoint as ckpt_io
from durn.train.loop import Trainer, resolve_settings

@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Synthetic degradation per preset for the own-photos path.
DEGRADE = {name: p.degradation or "gaussian:10,20" for name, p in PRESETS.items()}


def quick(tmp_path, photos, name="run", **settings):
    base = dict(out=tmp_path / name, data=photos, steps=2, batch_size=2, crop=16, log_every=1, val_every=0,
                ckpt_every=0, progress=False, val_crop=32)
    base.update(settings)
    return train(**base)


def read_log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def initial_weights(network, seed=0):
    torch.manual_seed(seed)
    return durn.get_model(network).state_dict()


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_trains_on_real_photos(tmp_path, train_photos, name):
    p = PRESETS[name]
    result = quick(tmp_path, train_photos, preset=name, degrade=DEGRADE[name], batch_size=1)
    assert (result.step, result.total_steps, result.interrupted) == (2, 2, None)
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log] == [1, 2]
    assert all(math.isfinite(r["loss"]) and r["images_per_s"] > 0 for r in log)
    expected = plan(p.stages, steps=2)
    assert [r["lr"] for r in log] == [expected.lr_at(0), expected.lr_at(1)]
    assert [r["stage"] for r in log] == ([0, 1] if name == "durn_s_p_raindrop" else [0, 0])

    ck = torch.load(result.last, weights_only=True)
    assert ck["network"] == p.network and ck["step"] == 2
    loaded = durn.get_model(p.network, weights=result.last).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in ck["model"].items())
    start = initial_weights(p.network)
    changed = [k for k, v in ck["model"].items() if v.is_floating_point() and not torch.equal(v, start[k])]
    trainable = [k for k, v in durn.get_model(p.network).named_parameters() if v.requires_grad]
    assert set(trainable) <= set(changed)   # every trainable weight moved (so it was trained)


def test_durn_p_recipe_reuses_batches_with_fresh_noise(tmp_path, train_photos, monkeypatch):
    seen = []
    original = Trainer._inputs

    def spy(self, batch, step):
        inp, target = original(self, batch, step)
        seen.append((step, target.clone(), (inp - target).clone()))
        return inp, target

    monkeypatch.setattr(Trainer, "_inputs", spy)
    quick(tmp_path, train_photos, preset="durn_p_gaussian", degrade="gaussian:30,50,70", steps=11,
          batch_size=4, crop=32)
    assert [s for s, _, _ in seen] == list(range(11))
    targets = [t for _, t, _ in seen]
    assert all(torch.equal(targets[0], t) for t in targets[1:10])      # one batch for steps 0-9
    assert not torch.equal(targets[9], targets[10])                    # a new one at step 10
    assert targets[0].shape == (4, 1, 32, 32)                          # gray crops
    noises = [n for _, _, n in seen]
    assert all(not torch.equal(a, b) for a, b in zip(noises, noises[1:]))
    # per-sample noise level: one of 30, 50, 70 (on 0-255), not clipped
    stds = torch.cat([n.flatten(1).std(dim=1) * 255 for n in noises])
    nearest = torch.tensor([30.0, 50.0, 70.0])[(stds[:, None] - torch.tensor([30.0, 50.0, 70.0])).abs().argmin(1)]
    assert ((stds - nearest).abs() / nearest).max() < 0.12      # 1024 samples: std error ~2-3 %
    assert len(set(nearest.tolist())) == 3
    assert min(float((n + t).min()) for (_, t, n) in seen) < 0        # unclipped


def test_durn_p_loss_falls(tmp_path, train_photos):
    quick(tmp_path, train_photos, preset="durn_p_gaussian", degrade="gaussian:30,50,70", steps=40,
          batch_size=4, crop=32, lr=1e-3, reuse=1)
    losses = [r["loss"] for r in read_log(tmp_path / "run")]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    # The noise alone costs E[n^2] = mean(30^2, 50^2, 70^2) / 255^2 = 0.0430 (L2 of the noisy
    # input), so ending below it means the network removes noise. Measured (1 thread): the
    # first five steps average 0.15, the last five 0.032.
    assert last < 0.5 * first and last < 0.0430


def test_checkpoints_and_best(tmp_path, train_photos):
    result = quick(tmp_path, train_photos, preset="durn_p_real", degrade="gaussian:10,20", steps=4,
                   val_every=2, ema=0.5, val_images=2)
    run = tmp_path / "run"
    log = read_log(run)
    val = [r for r in log if "val_psnr" in r]
    assert [r["step"] for r in val] == [2, 4] and all(r["val_images"] == 1 for r in val)  # 10 photos: 1 held out
    best = max(val, key=lambda r: r["val_psnr"])
    assert result.best_metrics["step"] == best["step"] and result.best_metrics["psnr"] == best["val_psnr"]

    last = ckpt_io.load(run / "last.pt")
    assert {"model", "params_ema", "optimizer", "rng", "config", "best"} <= set(last)
    assert last["config"]["ema"] == 0.5 and last["step"] == 4
    best_ck = torch.load(run / "best.pt", weights_only=True)
    assert "optimizer" not in best_ck and best_ck["step"] == best["step"]
    # load_reference picks the EMA weights (the ones validated) over the raw ones
    model = durn.load_reference("durn_p_real", run / "best.pt")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in best_ck["params_ema"].items())
    assert not all(torch.equal(best_ck["model"][k], v) for k, v in best_ck["params_ema"].items())
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "config.json", "last.pt", "log.jsonl"]
    assert json.loads((run / "config.json").read_text())["preset"] == "durn_p_real"


def test_atomic_writes_keep_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt_io.save(path, {"format": ckpt_io.FORMAT, "step": 1})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt_io.save(path, {"format": ckpt_io.FORMAT, "step": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_run_folder_is_never_overwritten_by_accident(tmp_path, train_photos):
    args = dict(preset="durn_p_real", degrade="gaussian:10", steps=1, batch_size=1)
    quick(tmp_path, train_photos, **args)
    run = tmp_path / "run"
    before = (run / "last.pt").read_bytes()
    with pytest.raises(ValueError, match="not empty.*--resume.*--overwrite"):
        quick(tmp_path, train_photos, **args)
    assert (run / "last.pt").read_bytes() == before
    quick(tmp_path, train_photos, overwrite=True, **{**args, "seed": 1})
    assert (run / "last.pt").read_bytes() != before
    (run / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="notes.txt"):
        quick(tmp_path, train_photos, overwrite=True, **args)
    assert (run / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="cannot change: batch_size"):
        quick(tmp_path, train_photos, resume=True, **{**args, "batch_size": 2})
    with pytest.raises(ValueError, match="cannot resume"):
        quick(tmp_path, train_photos, name="fresh", resume=True, **args)
    assert not (tmp_path / "fresh").exists()
    with pytest.raises(FileNotFoundError, match="not found"):   # bad data: nothing is created
        quick(tmp_path, tmp_path / "fresh_data_missing", name="fresh2", **args)
    assert not (tmp_path / "fresh2").exists()


def test_resume_settings_come_from_the_run(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    saved = {"preset": "durn_s", "out": str(run), "batch_size": 3, "val_every": 7}
    (run / "config.json").write_text(json.dumps(saved))
    config, _ = resolve_settings({"out": str(run), "resume": True, "workers": 1})
    assert (config.preset, config.batch_size, config.val_every, config.workers) == ("durn_s", 3, 7, 1)


def test_cli(tmp_path, train_photos, capsys):
    out = tmp_path / "cli"
    argv = ["train", "--preset", "durn_p_real", "--data", str(train_photos), "--degrade", "gaussian:10",
            "--out", str(out), "--steps", "2", "--batch-size", "1", "--crop", "16", "--log-every", "1",
            "--val-every", "0", "--no-progress"]
    assert cli_main(argv) == 0
    assert "2 steps done" in capsys.readouterr().out
    assert cli_main(argv) == 2                                   # the run exists
    err = capsys.readouterr().err
    assert err.startswith("durn train: error:") and "--resume" in err and len(err.strip().splitlines()) == 1
    assert cli_main(["train", "--preset", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "durn_p_gaussian" in capsys.readouterr().err
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"preset": "durn_p_real", "steps": 3, "batch_size": 1, "crop": 16}))
    assert cli_main(argv[:1] + ["--config", str(cfg), "--data", str(train_photos), "--degrade", "gaussian:10",
                                "--out", str(tmp_path / "c"), "--steps", "1", "--val-every", "0", "--no-progress"]) == 0
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert (saved["steps"], saved["crop"]) == (1, 16)            # the option beats the file
    capsys.readouterr()
    assert cli_main(["train", "--list-presets"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in PRESETS)


def test_preset_lookup_by_network_name_in_training(tmp_path, train_photos):
    result = quick(tmp_path, train_photos, preset="durn_p_real", degrade="gaussian:10", steps=1, batch_size=1)
    assert torch.load(result.last, weights_only=True)["config"]["preset"] == "durn_p_real"
    assert get_preset("durn_s_p").name == "durn_s_p_raindrop"


def test_init_starts_from_the_given_weights(tmp_path, train_photos):
    from durn import distributed as D

    quick(tmp_path, train_photos, name="a", preset="durn_p_real", degrade="gaussian:10,20")
    source = ckpt_io.load(tmp_path / "a" / "last.pt")["model"]
    settings = dict(out=str(tmp_path / "b"), data=str(train_photos), preset="durn_p_real",
                    degrade="gaussian:10,20", steps=2, batch_size=2, crop=16, val_every=0, progress=False,
                    init=str(tmp_path / "a" / "last.pt"))
    trainer = Trainer(resolve_settings(settings)[0], D.Dist())
    trainer.setup()
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in source.items())
    assert not all(torch.equal(state[k], v) for k, v in initial_weights("durn_p_real").items())
    assert trainer.model.training
    with pytest.raises(durn.CheckpointError, match="durn_p_real"):  # weights of another network
        quick(tmp_path, train_photos, name="c", preset="durn_p_gaussian", degrade="gaussian:10",
              init=str(tmp_path / "a" / "last.pt"))


def test_a_fine_tune_validates_its_starting_weights_as_step_0(tmp_path, train_photos):
    """The bar a fine-tune must clear is the weights it starts from: step 0 of its curve,
    and best.pt until a step beats them."""
    quick(tmp_path, train_photos, name="a", preset="durn_p_real", degrade="gaussian:10,20")
    start = tmp_path / "a" / "last.pt"
    quick(tmp_path, train_photos, name="b", preset="durn_p_real", degrade="gaussian:10,20", val_data=train_photos,
          val_every=2, val_images=2, init=str(start), lr=0.03)  # steps that wreck the weights
    vals = [r for r in read_log(tmp_path / "b") if "val_psnr" in r]
    assert [r["step"] for r in vals] == [0, 2]
    assert vals[1]["val_psnr"] < vals[0]["val_psnr"]
    best = torch.load(tmp_path / "b" / "best.pt", weights_only=True)
    assert best["step"] == 0
    assert all(torch.equal(best["model"][k], v) for k, v in ckpt_io.load(start)["model"].items())
    quick(tmp_path, train_photos, name="c", preset="durn_p_real", degrade="gaussian:10,20", val_data=train_photos,
          val_every=2, val_images=2)  # from scratch: no step-0 validation
    assert [r["step"] for r in read_log(tmp_path / "c") if "val_psnr" in r] == [2]


RULE = dict(preset="durn_p_real", degrade="gaussian:10", steps=2, batch_size=1)


def test_hidden_files_in_a_run_folder_are_the_users(tmp_path, train_photos):
    """Issue 12.2: hidden files count as the user's; --overwrite never deletes them."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".important.tmp").write_text("mine")
    (run / ".gitignore").write_text("*\n")
    for how in ({}, {"overwrite": True}):
        with pytest.raises(ValueError, match=r"not durn training files \(\.gitignore, \.important\.tmp\)"):
            quick(tmp_path, train_photos, **RULE, **how)
    quick(tmp_path, train_photos, name="elsewhere", **RULE)
    shutil.copy(tmp_path / "elsewhere" / "last.pt", run / "last.pt")
    with pytest.raises(ValueError, match="--resume, or choose another --out"):  # no --overwrite offered
        quick(tmp_path, train_photos, **RULE)
    with pytest.raises(ValueError, match=r"\.gitignore"):
        quick(tmp_path, train_photos, overwrite=True, **RULE)
    assert sorted(p.name for p in run.iterdir()) == [".gitignore", ".important.tmp", "last.pt"]
    assert (run / ".important.tmp").read_text() == "mine"


def test_bad_photos_stop_the_run_before_anything_is_written(tmp_path, train_photos):
    """Issue 12.4: every training and validation photo is read before the run folder is made."""
    data = tmp_path / "photos"
    shutil.copytree(train_photos, data)
    names = sorted(p.name for p in data.iterdir())
    (data / names[-1]).write_bytes((data / names[-1]).read_bytes()[:300])  # truncated
    (data / "zero.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"2 of 11 images cannot be read \(.*zero\.png.*\).*fix or remove them"):
        quick(tmp_path, data, **RULE)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match=r"1 of 11 images cannot be read \(.*zero\.png: not an image"):  # --val-data
        quick(tmp_path, train_photos, val_data=data / "zero.png", **RULE)
    assert not (tmp_path / "run").exists()


class Killed(BaseException):
    """SIGKILL, in-process: nothing of durn's runs after it."""


def killed_before_the_first_checkpoint(monkeypatch, tmp_path, photos, **settings):
    original = Trainer.train_step

    def step(self, *args):
        if self.step == 1:
            raise Killed
        return original(self, *args)

    monkeypatch.setattr(Trainer, "train_step", step)
    with pytest.raises(Killed):
        quick(tmp_path, photos, **settings)
    monkeypatch.undo()


def test_a_run_killed_before_its_first_checkpoint_is_never_stuck(tmp_path, train_photos, monkeypatch):
    """Issue 12.4: config.json and log.jsonl but no last.pt: the plain command starts it again,
    and so does --resume (continuing from step 0 is the same run); both equal a run never killed."""
    from test_train_resume import assert_same_state

    settings = dict(**RULE, ckpt_every=0)
    quick(tmp_path, train_photos, name="straight", **settings)
    run = tmp_path / "run"
    for how in ({}, {"resume": True}):
        killed_before_the_first_checkpoint(monkeypatch, tmp_path, train_photos, **settings)
        assert sorted(p.name for p in run.iterdir()) == ["config.json", "log.jsonl"]
        result = quick(tmp_path, train_photos, **settings, **how)
        assert (result.step, result.interrupted) == (2, None)
        assert_same_state(tmp_path / "straight" / "last.pt", run / "last.pt")
        assert read_log(run) == [{**r, "images_per_s": r2["images_per_s"], "s_per_step": r2["s_per_step"]}
                                 for r, r2 in zip(read_log(tmp_path / "straight"), read_log(run))]
        shutil.rmtree(run)


def test_best_without_last_names_the_one_way_on(tmp_path, train_photos, capsys):
    """Issue 12.4: weights but no last.pt cannot be resumed; plain and --resume both name --overwrite."""
    settings = dict(**RULE, val_every=1, val_images=1)
    quick(tmp_path, train_photos, **settings)
    run = tmp_path / "run"
    (run / "last.pt").unlink()
    for how in ({}, {"resume": True}):
        with pytest.raises(ValueError, match="best.pt but no last.pt.*start it again with --overwrite"):
            quick(tmp_path, train_photos, **settings, **how)
    assert cli_main(["train", "--out", str(run), "--resume", "--no-progress"]) == 2
    assert "start it again with --overwrite" in capsys.readouterr().err
    assert cli_main(["train", "--preset", "durn_p_real", "--data", str(train_photos), "--degrade", "gaussian:10",
                     "--out", str(run), "--steps", "2", "--batch-size", "1", "--crop", "16", "--val-every", "0",
                     "--no-progress", "--overwrite"]) == 0
    assert (run / "last.pt").is_file()


def test_leftovers_of_killed_writes_are_removed_on_resume_and_overwrite(tmp_path, train_photos):
    """Issue 12.5: the run's temporary files (.last.pt.PID.XXXXXXXX.part) that a SIGKILL left go."""
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    leftovers = [f".last.pt.{dead.pid}.a1b2c3d4.part", f".best.pt.{dead.pid}.zz_9y8x7.part", ".config.json.oldstyle.part"]
    quick(tmp_path, train_photos, **RULE)
    for extra in ({"resume": True}, {"overwrite": True}):
        for name in leftovers:
            (run / name).write_bytes(os.urandom(4096))
        quick(tmp_path, train_photos, **RULE, **extra)
        assert sorted(p.name for p in run.iterdir()) == ["config.json", "last.pt", "log.jsonl"]
    run.joinpath(leftovers[0]).write_bytes(b"half")  # a folder with nothing else: a new run may start
    for name in ("last.pt", "config.json", "log.jsonl"):
        (run / name).unlink()
    quick(tmp_path, train_photos, **RULE)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "last.pt", "log.jsonl"]


def test_ema_averages_batchnorm_statistics_with_the_weights():
    """The statistics of the averaged weights are the average of the statistics, not the
    last step's (a mismatch measured at -0.43 dB on durn_p)."""
    from durn.train.ema import EMA

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    ema = EMA(model, 0.5, updates=100)  # past the warm-up: d = 0.5
    bn, shadow = model[1], ema.module[1]
    conv0 = model[0].weight.detach().clone()
    with torch.no_grad():
        bn.running_mean.fill_(4.0)
        bn.running_var.fill_(9.0)
        bn.num_batches_tracked.fill_(7)
        model[0].weight.add_(2.0)
    w0 = shadow.weight.clone()
    ema.update(model)
    assert torch.allclose(shadow.running_mean, torch.full((2,), 2.0))   # 0.5 * 0 + 0.5 * 4
    assert torch.allclose(shadow.running_var, torch.full((2,), 5.0))    # 0.5 * 1 + 0.5 * 9
    assert int(shadow.num_batches_tracked) == 7                          # a count is copied
    assert torch.allclose(ema.module[0].weight, conv0 + 1.0)            # the weights, as before
    assert torch.equal(shadow.weight, w0)  # BN's affine weight did not move: still its average


def test_ema_warms_up_so_the_initial_weights_leave_the_average():
    """d = min(decay, (1 + n) / (10 + n)): after 125 updates towards fixed weights the init's
    share is 9! 125! / 134! (about 3e-14), where a fixed 0.995 would leave 0.995^125 = 53%."""
    from durn.train.ema import EMA

    model = torch.nn.Linear(3, 3)
    ema = EMA(model, 0.995)
    init = ema.module.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    for _ in range(125):
        ema.update(model)
    share = (model.weight - ema.module.weight).abs().max()  # init differs from the target by 1
    assert ema.updates == 125 and share < 1e-6
    assert torch.allclose(ema.module.weight, init + 1.0, atol=1e-6)
    late = EMA(model, 0.995, updates=5000)  # past the warm-up: the plain decay
    w = late.module.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    late.update(model)
    assert torch.allclose(late.module.weight, w + 0.005, atol=1e-6)


def test_unit_init_gives_every_conv_unit_variance_and_a_small_residual():
    import durn
    from durn.train.init import RESIDUAL_STD, unit_variance_init_

    torch.manual_seed(0)
    model = durn.durn_p_real()
    x = torch.rand(2, 3, 40, 44)
    outs = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: outs.__setitem__(n, float(o.std())))
             for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(x)
    before = dict(outs)
    unit_variance_init_(model, x)
    with torch.no_grad():
        model(x)
    last = list(outs)[-1]
    assert min(before.values()) < 0.5  # the default init shrinks the features
    assert all(abs(v - 1) < 1e-3 for n, v in outs.items() if n != last), outs
    assert abs(outs[last] - RESIDUAL_STD) < 1e-5
    assert model.training  # left as it was


def test_unit_init_runs_in_the_loop_and_refuses_init(tmp_path, train_photos):
    """A --unit-init run starts near the identity (residual std 0.01): its first loss is
    within a few times the noisy input's own, where the default init starts at 0.1."""
    from durn.train import TrainConfig
    from durn.train.config import validate

    quick(tmp_path, train_photos, preset="durn_p_real", degrade="gaussian:20", steps=2, batch_size=2,
          crop=32, lr=1e-4, unit_init=True, loss="l2", log_every=1)
    first = read_log(tmp_path / "run")[0]["loss"]
    assert first < 4 * (20 / 255) ** 2  # the noise alone costs 0.0062
    with pytest.raises(ValueError, match="unit_init"):
        validate(TrainConfig(preset="durn_p_real", out=str(tmp_path / "x"), unit_init=True, init="untrained"))


def test_bf16_training_validates_in_float32(tmp_path, train_photos, monkeypatch):
    """A bf16 run trains in autocast but scores validation in float32, as the cards measure
    released weights: the same weights validate to the same numbers at either precision."""
    from durn import distributed as D
    from durn.ops import backends

    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: True)  # tiny crops: emulation is fine

    scores = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        settings = dict(out=str(tmp_path / precision), data=str(train_photos), preset="durn_s",
                        degrade="rain", steps=2, batch_size=1, crop=16, val_every=0, progress=False,
                        precision=precision, val_crop=32, val_images=2)
        trainer = Trainer(resolve_settings(settings)[0], D.Dist())
        trainer.setup()
        assert trainer.precision == precision
        scores[precision] = trainer.validate()
    # bf16 would have moved the score: the network's output in autocast is not float32's
    x = next(iter(trainer.data.val))[1]["input"][None]
    model = trainer.model.eval()
    with torch.no_grad():
        full = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert (low.float() - full).abs().max() > 1e-4
    assert scores["bf16"] == scores["fp32"]
    result = quick(tmp_path, train_photos, name="run", preset="durn_s", degrade="rain", precision="bf16",
                   batch_size=1, steps=2)
    assert result.step == 2 and all(math.isfinite(r["loss"]) for r in read_log(tmp_path / "run"))


def test_bf16_on_a_cpu_that_emulates_it_is_refused(tmp_path, train_photos, monkeypatch):
    """Emulated bf16 is two orders of magnitude slower than float32: a queued run that asks
    for it must stop at once with what to use instead, not crawl."""
    from durn import distributed as D
    from durn.ops import backends
    from durn.train import loop

    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: False)
    settings = dict(out=str(tmp_path / "run"), data=str(train_photos), preset="durn_s", degrade="rain",
                    steps=2, batch_size=1, crop=16, val_every=0, progress=False, precision="bf16")
    with pytest.raises(ValueError, match="native bf16.*--precision fp32"):
        Trainer(resolve_settings(settings)[0], D.Dist()).setup()
    assert not (tmp_path / "run").exists()
    assert loop.pick_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: True)
    assert loop.pick_precision("bf16", torch.device("cpu")) == "bf16"
    assert loop.pick_precision("auto", torch.device("cpu")) == "bf16"
    monkeypatch.setattr(backends, "cpu_has_native_fp16", lambda: False)
    with pytest.raises(ValueError, match="native fp16.*--precision fp32"):
        loop.pick_precision("fp16", torch.device("cpu"))
    monkeypatch.setattr(backends, "cpu_has_native_fp16", lambda: True)
    assert loop.pick_precision("fp16", torch.device("cpu")) == "fp16"


def test_val_degrade_validates_every_photo_at_each_fixed_condition(tmp_path, train_photos):
    light, heavy = "rain:density=0.001,brightness=0.4,layers=1,veil=0", "rain:density=0.004,layers=3,veil=0.25"
    result = quick(tmp_path, train_photos, preset="durn_p_real", degrade="rain", val_degrade=f"{light}; {heavy}",
                   steps=1, val_every=1, val_images=2)
    val = [r for r in read_log(tmp_path / "run") if "val_psnr" in r][-1]
    conditions = val["val_conditions"]
    assert list(conditions) == [light, heavy]
    assert all(c["images"] == 1 for c in conditions.values()) and val["val_images"] == 2  # 1 photo x 2
    assert conditions[heavy]["input_psnr"] < conditions[light]["input_psnr"] - 5  # they are the conditions asked
    assert val["val_psnr"] == pytest.approx((conditions[light]["psnr"] + conditions[heavy]["psnr"]) / 2, abs=1e-9)
    assert result.best_metrics["conditions"][heavy]["psnr"] == conditions[heavy]["psnr"]


def test_val_degrade_card_takes_the_model_cards_conditions(tmp_path, train_photos, capsys):
    from durn.heldout import CONDITIONS

    quick(tmp_path, train_photos, preset="durn_p_real", degrade="camera_noise", val_degrade="card",
          steps=1, val_every=1, val_images=1)
    val = [r for r in read_log(tmp_path / "run") if "val_psnr" in r][-1]
    assert list(val["val_conditions"]) == list(CONDITIONS["durn_p_real"])  # labels as on the card
    shots = [c["input_psnr"] for c in val["val_conditions"].values()]
    assert shots == sorted(shots, reverse=True)  # shot 0.001, 0.004, 0.012: noisier and noisier
    base = ["train", "--preset", "durn_p_real", "--data", str(train_photos), "--steps", "1", "--batch-size", "1",
            "--crop", "16", "--val-every", "0", "--no-progress"]
    assert cli_main(base + ["--degrade", "gaussian:10", "--val-degrade", "card", "--out", str(tmp_path / "a")]) == 2
    assert "cycles its sigmas" in capsys.readouterr().err
    assert cli_main(base + ["--degrade", "rain", "--val-degrade", "rain;snow", "--out", str(tmp_path / "b")]) == 2
    assert "bad degradation 'snow'" in capsys.readouterr().err
    assert cli_main(base + ["--degrade", "rain", "--val-degrade", "rain;", "--out", str(tmp_path / "b")]) == 2
    assert "joined by ';'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # a validation change would mix two scales in best.pt's choice: not on resume
    assert cli_main(base + ["--degrade", "rain", "--out", str(tmp_path / "c")]) == 0
    assert cli_main(base + ["--degrade", "rain", "--val-degrade", "rain", "--out", str(tmp_path / "c"),
                            "--resume"]) == 2
    assert "val_degrade" in capsys.readouterr().err


def test_a_setting_newer_than_the_run_counts_as_its_default_on_resume():
    from durn.train.config import make_config, resume_conflicts

    now = make_config(out="r", data="d", degrade="rain").to_dict()
    saved = {k: v for k, v in now.items() if k != "val_degrade"}  # a run started before the setting
    assert resume_conflicts(saved, make_config(out="r", data="d", degrade="rain")) == []
    conflicts = resume_conflicts(saved, make_config(out="r", data="d", degrade="rain", val_degrade="card",
                                                    preset="durn_s_didmdn"))
    assert any(c.startswith("val_degrade: run has the default None") for c in conflicts)
