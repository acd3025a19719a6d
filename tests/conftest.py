import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

# The "triton" backend runs its kernels on CPU tensors under Triton's interpreter where no
# CUDA device exists. Triton reads TRITON_INTERPRET when @triton.jit decorates a kernel, i.e.
# when durn.kernels is first imported, so it is set here, before any test imports it.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

NETWORK_NAMES = ("durn_p", "durn_p_real", "durn_u", "durn_us", "durn_s", "durn_s_p")
REPO = Path(__file__).resolve().parents[1]


REFERENCE_DATA = REPO / "tests" / "reference"


def recipe_path() -> Path | None:
    """The fixtures' weight recipe. Its README asks projects not to copy it, so it is read
    where it lives: $DURN_REFERENCE, or ../shared/reference beside the checkout."""
    for root in (os.environ.get("DURN_REFERENCE"), REPO.parent / "shared" / "reference"):
        if root and (Path(root) / "recipe.py").is_file():
            return Path(root) / "recipe.py"
    return None


def perturb_batch_norms(model, seed: int = 7):
    """Set every BatchNorm2d's statistics and affine away from the identity (seeded), so
    that folding them into convolutions is exercised; returns ``model``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return model


def optional_import(name: str, reason: str | None = None):
    """The module ``name``, or a skip (of the test, or of the module at import) saying why it
    cannot be imported. Unlike ``pytest.importorskip``, which catches only ImportError, any
    import-time failure skips: PyPI's CUDA torchvision beside a CPU torch raises RuntimeError."""
    __tracebackhide__ = True  # report the skip at the test that asked
    try:
        return importlib.import_module(name)
    except Exception as err:  # an optional dependency that is broken here is as absent
        why = f"{name} cannot be imported: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        pytest.skip(f"{reason} ({why})" if reason else why, allow_module_level=True)


@pytest.fixture(scope="session")
def reference():
    """The golden fixtures: the authors' key layouts and golden pairs (data, in
    tests/reference) and the recipe of their weights (code, read from the shared folder:
    tests that need it skip where it is absent)."""
    recipe = None
    path = recipe_path()
    if path is not None:
        spec = importlib.util.spec_from_file_location("durn_reference_recipe", path)
        recipe = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(recipe)

    def need_recipe():
        if recipe is None:
            pytest.skip("the fixtures' recipe.py is not beside the checkout (../shared/reference) "
                        "and DURN_REFERENCE is not set; its README asks projects not to copy it")
        return recipe

    class Reference:
        def keys(self, name):
            return json.loads((REFERENCE_DATA / f"{name}.keys.json").read_text())

        def state_dict(self, name, seed=0):
            return need_recipe().recipe_state_dict(self.keys(name)["keys"], seed=seed)

        def golden(self, name):
            return torch.load(REFERENCE_DATA / f"{name}.golden.pt", weights_only=True)

        @staticmethod
        def input(*args, **kwargs):
            return need_recipe().recipe_input(*args, **kwargs)

    return Reference()


@pytest.fixture(scope="session")
def hubconf():
    """The repository's hubconf.py, imported as torch.hub's source="local" does."""
    import sys

    sys.path.insert(0, str(REPO))
    try:
        import hubconf as module
    finally:
        sys.path.remove(str(REPO))
    return module


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a test module: its images are small, so one thread is as
    fast as two and results do not depend on thread scheduling (the resume and DDP tests
    compare against single-threaded subprocesses). Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def _tuning_record(tmp_path_factory):
    """The fast path's on-disk tuning record in a temporary folder, not the user's torch
    hub folder (subprocesses inherit it)."""
    old = os.environ.get("DURN_TUNING_CACHE")
    os.environ["DURN_TUNING_CACHE"] = str(tmp_path_factory.mktemp("tuning") / "tuning.json")
    yield
    if old is None:
        os.environ.pop("DURN_TUNING_CACHE", None)
    else:
        os.environ["DURN_TUNING_CACHE"] = old


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def train_photos(tmp_path_factory):
    """A folder of small real photos for training tests: scikit-image's training photos
    (never camera or astronaut) as RGB PNGs, short side 80 px."""
    from PIL import Image

    from durn.data import sample_images

    folder = tmp_path_factory.mktemp("train_photos")
    for path in sample_images("train"):
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = 80 / min(im.size)
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
            im.save(folder / f"{path.stem}.png")
    return folder
