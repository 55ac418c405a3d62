"""H5MD 1.1 trajectories: a background writer, a reader and an MDAnalysis bridge.

Layout (https://www.nongnu.org/h5md/h5md.html)::

    h5md/                 version = [1, 1]; author/name; creator/name = nemd, version
    particles/all/
        species           (N,) atomic numbers (time independent)
        box/              dimension = 3, boundary = periodic|none per axis
            edges/        step, time (ps), value (T, 3, 3) Å (cell rows)
        position/         step, time, value (T, N, 3) Å, wrapped into the cell
        image/            step, time, value (T, N, 3) int32: unwrapped = position + image @ cell
        velocity/         optional, Å/ps
        force/            optional, stored in kJ mol-1 Angstrom-1 (a unit MDAnalysis reads;
                          nemd's reader converts back to eV/Å)
    observables/<name>/   step, time, value (T,): temperature (K), energies (eV), ...

Frames are queued to a writer thread (bounded queue, so a slow disk slows the producer
rather than eating memory) and written in batches of ``flush_every`` frames. The file is
opened, extended and closed for each batch, so between batches it is a complete HDF5
file: a run killed with SIGKILL keeps every batch written before the kill (only a kill
during the few milliseconds of a batch write can damage the file).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..units import EV_PER_ANGSTROM_IN_KJ_PER_MOL, masses_of, symbols_of
_CHUNK_FRAMES = 16


class TrajectoryWriter:
    """Write frames to an H5MD file from a background thread.

    Args:
      path: output file (``.h5``).
      numbers: (N,) atomic numbers.
      cell: (3, 3) Å, or None for a non-periodic system.
      pbc: periodicity per axis.
      velocities, forces: also store them.
      precision: "float32" (default) or "float64" for positions/velocities/forces.
      flush_every: frames per batch written to disk.
      append: continue an existing nemd H5MD file (restart); atoms and species must
        match, and frames at or after the first new step are dropped first.
      author: stored in ``h5md/author``.
    """

    def __init__(self, path, numbers, cell=None, pbc=True, *, velocities: bool = False,
                 forces: bool = False, precision: str = "float32", flush_every: int = 10,
                 append: bool = False, author: str = "nemd user", queue_size: int = 64,
                 compression: str | None = "gzip"):
        self.path = Path(path)
        self.numbers = np.asarray(numbers, dtype=np.int32)
        self.pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
        self.cell = None if cell is None or not self.pbc.any() else np.asarray(cell, np.float64)
        self.with_velocities, self.with_forces = velocities, forces
        self.dtype = np.dtype(precision)
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self.flush_every = int(flush_every)
        self.compression = compression
        self._append = append
        self._truncated = False
        if append:
            self._check_existing()
        else:
            if self.path.exists():
                self.path.unlink()
            self._create(author)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self.frames_written = 0
        self._thread = threading.Thread(target=self._worker, name="nemd-h5md-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public API

    def write(self, step: int, time_ps: float, positions, *, cell=None, velocities=None,
              forces=None, observables: dict | None = None) -> None:
        """Queue one frame (host arrays; positions unwrapped, Å). Blocks only if the queue is full."""
        self._raise_if_failed()
        frame = dict(step=int(step), time=float(time_ps), positions=np.array(positions, np.float64),
                     cell=self.cell if cell is None else np.asarray(cell, np.float64),
                     velocities=None if velocities is None else np.array(velocities),
                     forces=None if forces is None else np.array(forces),
                     observables=dict(observables or {}))
        if frame["positions"].shape != (self.numbers.size, 3):
            raise ValueError(f"frame has {frame['positions'].shape} positions, the file {self.numbers.size} atoms")
        self._queue.put(frame)

    def write_frame(self, frame) -> None:
        """Write a ``nemd.md.Frame`` (the MD driver's ``on_frame`` callback)."""
        self.write(frame.step, frame.time_ps, frame.positions, cell=frame.cell,
                   velocities=frame.velocities if self.with_velocities else None,
                   forces=frame.forces if self.with_forces else None, observables=frame.observables)

    def flush(self) -> None:
        """Write everything queued so far to disk and wait for it."""
        self._queue.put("flush")
        self._queue.join()
        self._raise_if_failed()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise_if_failed()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ internals

    def _raise_if_failed(self):
        if self._error is not None:
            raise RuntimeError(f"H5MD writer failed: {self._error}") from self._error

    def _create(self, author: str) -> None:
        with h5py.File(self.path, "w") as f:
            h5 = f.create_group("h5md")
            h5.attrs["version"] = np.array([1, 1])
            f.create_group("h5md/author").attrs["name"] = author
            creator = f.create_group("h5md/creator")
            creator.attrs["name"] = "nemd"
            creator.attrs["version"] = __version__
            group = f.create_group("particles/all")
            group.create_dataset("species", data=self.numbers)
            box = group.create_group("box")
            box.attrs["dimension"] = 3
            box.attrs["boundary"] = np.array(["periodic" if p else "none" for p in self.pbc], dtype="S8")
            n = self.numbers.size
            if self.cell is not None:
                self._element(box, "edges", (3, 3), np.float64, "Angstrom")
            self._element(group, "position", (n, 3), self.dtype, "Angstrom")
            self._element(group, "image", (n, 3), np.int32, None)
            if self.with_velocities:
                self._element(group, "velocity", (n, 3), self.dtype, "Angstrom ps-1")
            if self.with_forces:
                self._element(group, "force", (n, 3), self.dtype, "kJ mol-1 Angstrom-1")
            f.create_group("observables")

    def _element(self, parent, name, shape, dtype, unit):
        group = parent.create_group(name)
        group.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
        time = group.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(1024,))
        time.attrs["unit"] = "ps"
        value = group.create_dataset(
            "value", shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
            chunks=(min(_CHUNK_FRAMES, max(1, 2**20 // max(1, int(np.prod(shape))))), *shape),
            compression=self.compression)
        if unit:
            value.attrs["unit"] = unit
        return group

    def _check_existing(self) -> None:
        if not self.path.is_file():
            raise FileNotFoundError(f"cannot append: {self.path} does not exist")
        with h5py.File(self.path, "r") as f:
            _require_h5md(f, self.path)
            species = f["particles/all/species"][()]
            if species.shape != self.numbers.shape:
                raise ValueError(f"cannot append: {self.path} has {species.size} atoms, this run {self.numbers.size}")
            if not np.array_equal(species, self.numbers):
                raise ValueError(f"cannot append: the species in {self.path} differ from this run's")
            group = f["particles/all"]
            self.with_velocities = "velocity" in group
            self.with_forces = "force" in group
            self.dtype = group["position/value"].dtype

    def _worker(self) -> None:
        batch = []
        while True:
            item = self._queue.get()
            try:
                if item is None or item == "flush":
                    if batch and self._error is None:
                        self._write_batch(batch)
                    batch = []
                    if item is None:
                        return
                else:
                    batch.append(item)
                    if len(batch) >= self.flush_every and self._error is None:
                        self._write_batch(batch)
                        batch = []
            except BaseException as exc:  # reported to the producer on its next call
                self._error = exc
                batch = []
            finally:
                self._queue.task_done()

    def _write_batch(self, batch) -> None:
        steps = np.array([fr["step"] for fr in batch], dtype=np.int64)
        times = np.array([fr["time"] for fr in batch])
        positions = np.stack([fr["positions"] for fr in batch])
        if self.cell is not None:
            cells = np.stack([fr["cell"] for fr in batch])
            frac = np.einsum("tni,tij->tnj", positions, np.linalg.inv(cells))
            image = np.where(self.pbc, np.floor(frac), 0.0)
            wrapped = positions - np.einsum("tni,tij->tnj", image, cells)
        else:
            cells, image, wrapped = None, np.zeros_like(positions), positions
        with h5py.File(self.path, "a") as f:
            group = f["particles/all"]
            if self._append and not self._truncated:
                self._truncate(f, int(steps[0]))
                self._truncated = True
            if cells is not None:
                _extend(group["box/edges"], steps, times, cells)
            _extend(group["position"], steps, times, wrapped.astype(self.dtype))
            _extend(group["image"], steps, times, image.astype(np.int32))
            if self.with_velocities:
                _extend(group["velocity"], steps, times, np.stack([fr["velocities"] for fr in batch]).astype(self.dtype))
            if self.with_forces:
                forces = np.stack([fr["forces"] for fr in batch]) * EV_PER_ANGSTROM_IN_KJ_PER_MOL
                _extend(group["force"], steps, times, forces.astype(self.dtype))
            names = sorted(set().union(*(fr["observables"] for fr in batch)))
            for name in names:
                values = np.array([fr["observables"].get(name, np.nan) for fr in batch], dtype=np.float64)
                if name not in f["observables"]:
                    obs = f["observables"].create_group(name)
                    obs.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
                    obs.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(1024,))
                    obs["time"].attrs["unit"] = "ps"
                    obs.create_dataset("value", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(1024,))
                    obs["value"].attrs["unit"] = _OBSERVABLE_UNITS.get(name, "")
                _extend(f["observables"][name], steps, times, values)
        self.frames_written += len(batch)

    @staticmethod
    def _truncate(f, first_new_step: int) -> None:
        """Drop frames at or after ``first_new_step`` (written after the checkpoint)."""
        groups = [g for g in _element_groups(f)]
        for g in groups:
            keep = int(np.searchsorted(g["step"][()], first_new_step))
            for name in ("step", "time", "value"):
                g[name].resize(keep, axis=0)


_OBSERVABLE_UNITS = dict(temperature="K", potential_energy="eV", kinetic_energy="eV", conserved_energy="eV")


def _extend(group, steps, times, values) -> None:
    n0 = group["step"].shape[0]
    n1 = n0 + len(steps)
    for name, data in (("step", steps), ("time", times), ("value", values)):
        group[name].resize(n1, axis=0)
        group[name][n0:n1] = data


def _element_groups(f):
    groups = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and {"step", "time", "value"} <= set(obj.keys()):
            groups.append(obj)

    f.visititems(visit)
    return groups


def _require_h5md(f, path) -> None:
    if "h5md" not in f or "particles/all/position" not in f:
        raise ValueError(f"{path} is not an H5MD trajectory written by nemd (no h5md/particles/all/position)")


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Frames read from an H5MD file (host arrays, Å, ps, eV)."""

    step: np.ndarray  # (T,)
    time: np.ndarray  # (T,) ps
    positions: np.ndarray  # (T, N, 3) unwrapped
    wrapped: np.ndarray  # (T, N, 3) as stored
    image: np.ndarray  # (T, N, 3)
    cell: np.ndarray | None  # (T, 3, 3)
    pbc: np.ndarray
    numbers: np.ndarray  # (N,)
    velocities: np.ndarray | None
    forces: np.ndarray | None  # eV/Å
    observables: dict

    @property
    def n_frames(self) -> int:
        return int(self.step.size)


def n_frames(path) -> int:
    """Number of position frames in an H5MD file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trajectory not found: {path}")
    with h5py.File(path, "r") as f:
        _require_h5md(f, path)
        return int(f["particles/all/position/step"].shape[0])


def read_frames(path, start: int | None = None, stop: int | None = None, step: int | None = None) -> Trajectory:
    """Read frames ``[start:stop:step]`` of a nemd H5MD file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trajectory not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path} is not a readable HDF5 file: {exc}") from None
    with f:
        _require_h5md(f, path)
        group = f["particles/all"]
        sel = slice(start, stop, step)
        steps = group["position/step"][sel]
        wrapped = group["position/value"][sel].astype(np.float64)
        image = group["image/value"][sel] if "image" in group else np.zeros(wrapped.shape, np.int32)
        boundary = [b.decode() if isinstance(b, bytes) else str(b) for b in group["box"].attrs["boundary"]]
        pbc = np.array([b == "periodic" for b in boundary])
        cell = group["box/edges/value"][sel] if "edges" in group["box"] else None
        positions = wrapped + (np.einsum("tni,tij->tnj", image, cell) if cell is not None else 0.0)
        velocities = group["velocity/value"][sel] if "velocity" in group else None
        forces = group["force/value"][sel] / EV_PER_ANGSTROM_IN_KJ_PER_MOL if "force" in group else None
        observables = {name: f["observables"][name]["value"][sel] for name in f.get("observables", {})}
        return Trajectory(steps, group["position/time"][sel], positions, wrapped, image, cell, pbc,
                          group["species"][()], velocities, forces, observables)


def universe(path):
    """An ``MDAnalysis.Universe`` over a nemd H5MD file, with elements, names and masses."""
    import MDAnalysis as mda

    path = Path(path)
    with h5py.File(path, "r") as f:
        _require_h5md(f, path)
        numbers = f["particles/all/species"][()]
    u = mda.Universe.empty(len(numbers), trajectory=True)
    u.load_new(str(path), format="H5MD")
    symbols = symbols_of(numbers)
    u.add_TopologyAttr("elements", symbols)
    u.add_TopologyAttr("names", symbols)
    u.add_TopologyAttr("types", symbols)
    u.add_TopologyAttr("masses", masses_of(numbers))
    return u
