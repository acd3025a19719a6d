"""The training sample stream: which sample every process reads at every step, as a pure
function of (seed, position), so that resuming and sharding need no saved sampler state.

The stream is the concatenation of one random permutation of the training set per epoch
(``perm(seed, epoch)``); global batch ``b`` is stream positions ``[b*B, (b+1)*B)`` and
process ``r`` of ``W`` reads the ``r``-th slice of ``B / W`` of them. Each position is
read as the pair ``(index, epoch)``, from which durn's datasets draw that sample's crop,
flip and degradation (``set_epoch``), so ``W`` processes see exactly the samples one
process with batch ``B`` sees, and a resumed run the samples an uninterrupted one sees.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch


def mix(*parts) -> int:
    """A 63-bit seed from any tuple of ints and strings (stable across runs and machines)."""
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


def generator(*parts, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(mix(*parts))
    return g


class SampleStream:
    def __init__(self, size: int, seed: int, *, shuffle: bool = True):
        if size < 1:
            raise ValueError("the training set is empty")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self._epoch, self._perm = -1, None

    def index(self, position: int) -> int:
        epoch, offset = divmod(position, self.size)
        if not self.shuffle:
            return offset
        if epoch != self._epoch:
            self._perm = torch.randperm(self.size, generator=generator(self.seed, "epoch", epoch)).tolist()
            self._epoch = epoch
        return self._perm[offset]

    def item(self, position: int) -> tuple[int, int]:
        """``(index, epoch)`` of the sample at ``position``."""
        return self.index(position), position // self.size


class ShardedBatches(torch.utils.data.Sampler):
    """Batch sampler for a DataLoader: lists of ``(index, epoch)`` for this process's share
    of global batches ``start, start + 1, ..., stop - 1``."""

    def __init__(self, stream: SampleStream, global_batch: int, *, rank: int, world_size: int,
                 start: int, stop: int):
        if global_batch % world_size:
            raise ValueError(
                f"the batch size {global_batch} does not divide among {world_size} processes; "
                f"choose a multiple of {world_size}"
            )
        self.stream, self.global_batch = stream, global_batch
        self.local = global_batch // world_size
        self.rank, self.start, self.stop = rank, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for b in range(self.start, self.stop):
            first = b * self.global_batch + self.rank * self.local
            yield [self.stream.item(p) for p in range(first, first + self.local)]
