"""nnp_lab.potentials.memory: peak-memory estimates, available memory, and the check in evaluate."""

import json
import os
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ase.build import bulk, molecule

from nnp_lab import InputError
from nnp_lab.potentials import memory
from nnp_lab.potentials.base import Potential
from nnp_lab.potentials.memory import (
    MemoryLimit,
    MemoryLimitError,
    available_memory,
    available_memory_bytes,
    batch_bounds,
    estimate_neighbours,
    estimate_pairs,
    memory_limits,
    peak_bytes,
)

GB = 10**9
NO_RLIMIT = resource.RLIM_INFINITY


def _true_pairs(atoms, cutoff):
    from vesin import NeighborList

    box = np.asarray(atoms.cell) if atoms.pbc.any() else np.zeros((3, 3))
    i, _ = NeighborList(cutoff=cutoff, full_list=False).compute(
        atoms.positions, box, atoms.pbc.tolist(), quantities="ij"
    )
    return len(i)


def si(k):
    return bulk("Si", "diamond", a=5.43, cubic=True) * (k, k, k)


def cu(k):
    return bulk("Cu", "fcc", a=3.61, cubic=True) * (k, k, k)


# -- pair estimate ------------------------------------------------------------------------
@pytest.mark.parametrize("cutoff", [4.0, 5.0, 6.0])
@pytest.mark.parametrize(
    "name, atoms",
    [
        ("Si 2 (primitive)", bulk("Si", "diamond", a=5.43)),
        ("Si 64", si(2)),
        ("Si 512", si(4)),
        ("Cu 1 (primitive)", bulk("Cu", "fcc", a=3.61)),
        ("Cu 108", cu(3)),
        ("Cu 500", cu(5)),
        ("Cu 500 rattled", cu(5)),
    ],
)
def test_pair_estimate_is_within_a_factor_1_5_of_the_neighbour_list(name, atoms, cutoff):
    atoms = atoms.copy()
    if "rattled" in name:
        atoms.rattle(0.05, seed=1)
    estimate, true = estimate_pairs(atoms, cutoff), _true_pairs(atoms, cutoff)
    assert true / 1.5 <= estimate <= 1.5 * true, (estimate, true)


def test_pair_estimate_sees_vacuum_and_caps_molecules():
    from nnp_lab import build

    slab = build.surface(
        build.bulk("Pt", "fcc", a=3.92),
        (1, 1, 1),
        layers=4,
        vacuum=10,
        fixed_layers=2,
        size=(3, 3),
    )
    # half of the cell is vacuum: a global density would halve the count
    est, true = estimate_pairs(slab, 5.0), _true_pairs(slab, 5.0)
    assert true / 1.5 <= est <= 1.5 * true
    water = molecule("H2O")
    assert estimate_pairs(water, 5.0) == pytest.approx(3.0)  # all pairs, n (n - 1) / 2
    assert estimate_pairs(water, 0.0) == 0.0


def test_angles_are_counted_from_the_first_shells():
    # three-body terms (CHGNet's 3 Å bond graph): diamond Si has 4 neighbours, fcc Cu 12
    for atoms, k in ((si(2), 4), (cu(3), 12)):
        pairs, angles = estimate_neighbours(atoms, 6.0, 3.0)
        assert angles == pytest.approx(len(atoms) * k * (k - 1) / 2)
        assert pairs == estimate_pairs(atoms, 6.0)
    assert estimate_neighbours(si(2), 6.0)[1] == 0.0


def test_pair_estimate_is_deterministic_and_does_not_modify_the_atoms():
    atoms = cu(4)
    atoms.rattle(0.1, seed=3)
    before = atoms.copy()
    values = {estimate_pairs(atoms, 5.0) for _ in range(3)}
    assert len(values) == 1
    assert values == {estimate_pairs(atoms.copy(), 5.0)}
    assert atoms == before


def test_estimate_grows_with_atoms_and_pairs():
    constants = dict(per_atom=300e3, per_pair=3e3, overhead=20e6)
    sizes = [peak_bytes([si(k)], 5.0, **constants).bytes for k in (1, 2, 3, 4, 6)]
    assert all(b > a for a, b in zip(sizes, sizes[1:]))
    # the same atoms packed denser have more pairs, so need more
    dense = si(2)
    dense.set_cell(dense.cell * 0.9, scale_atoms=True)
    assert peak_bytes([dense], 5.0, **constants).bytes > sizes[1]
    # a call's estimate is the sum over structures evaluated together ...
    two = peak_bytes([si(2), si(2)], 5.0, **constants)
    one = peak_bytes([si(2)], 5.0, **constants)
    assert two.bytes == pytest.approx(2 * one.bytes - constants["overhead"])
    assert (two.n_structures, two.n_batches) == (2, 1)
    # ... or the largest batch's when the model evaluates in batches
    chunked = peak_bytes([si(2), si(3), si(2)], 5.0, **constants, max_atoms=256)
    assert chunked.n_atoms == 216 and chunked.n_batches == 3
    # no constants: nothing to check
    assert peak_bytes([si(4)], 5.0, per_atom=0, per_pair=0).bytes == 0


def test_upper_bound_bounds_the_estimate():
    constants = dict(per_atom=300e3, per_pair=3e3, overhead=20e6)
    for atoms in (si(3), cu(4), molecule("C6H6")):
        bound = memory.upper_bound_bytes(len(atoms), 5.0, **constants)
        assert bound >= peak_bytes([atoms], 5.0, **constants).bytes


def test_batch_bounds_split_like_the_models():
    assert batch_bounds([10, 10, 10]) == [(0, 3)]
    assert batch_bounds([10, 10, 10], max_atoms=20) == [(0, 2), (2, 3)]
    assert batch_bounds([50, 10, 10], max_atoms=20) == [(0, 1), (1, 3)]  # big one alone
    assert batch_bounds([1] * 5, max_structures=2) == [(0, 2), (2, 4), (4, 5)]
    assert batch_bounds([]) == []


# -- available memory ---------------------------------------------------------------------
def _fake_system(tmp_path, *, cgroup="0::/\n", files=None, statm_pages=None, available_kib=None):
    """A fake /sys/fs/cgroup, /proc/self and /proc/meminfo under tmp_path."""
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    root.mkdir()
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup)
    if statm_pages is not None:
        (proc / "statm").write_text(f"{statm_pages} 100 50 1 0 10 0\n")
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    meminfo = tmp_path / "meminfo"
    if available_kib is not None:
        meminfo.write_text(
            f"MemTotal:       32000000 kB\nMemFree:         1000000 kB\n"
            f"MemAvailable:   {available_kib} kB\nBuffers:  1 kB\n"
        )
    return dict(cgroup_root=root, proc_self=proc, meminfo=meminfo)


def test_cgroup_v2_limit_minus_usage_counts_page_cache_as_free(tmp_path):
    paths = _fake_system(
        tmp_path,
        files={
            "cgroup.controllers": "cpu memory\n",
            "memory.max": "4000000000\n",
            "memory.current": "1500000000\n",
            "memory.stat": "anon 1000000000\nfile 500000000\ninactive_file 300000000\n",
        },
        available_kib=20_000_000,
    )
    limit = available_memory("cpu", rlimit_as=NO_RLIMIT, **paths)
    assert limit.source == "cgroup"
    assert limit.available == 4_000_000_000 - (1_500_000_000 - 300_000_000)
    assert "memory.max" in limit.detail and "4.0 GB" in limit.detail
    assert available_memory_bytes("cpu", rlimit_as=NO_RLIMIT, **paths) == limit.available


def test_cgroup_v2_nested_takes_the_tightest_level_and_ignores_max(tmp_path):
    paths = _fake_system(
        tmp_path,
        cgroup="0::/user.slice/session-1.scope\n",
        files={
            "cgroup.controllers": "memory\n",
            "user.slice/memory.max": "2000000000\n",
            "user.slice/memory.current": "500000000\n",
            "user.slice/session-1.scope/memory.max": "max\n",
            "user.slice/session-1.scope/memory.current": "400000000\n",
        },
        available_kib=20_000_000,
    )
    limits = memory_limits("cpu", rlimit_as=NO_RLIMIT, **paths)
    assert [lim.source for lim in limits] == ["cgroup", "available RAM"]
    assert available_memory_bytes("cpu", rlimit_as=NO_RLIMIT, **paths) == 1_500_000_000


def test_cgroup_v1_limit_and_unlimited_value(tmp_path):
    unlimited = "9223372036854771712\n"
    paths = _fake_system(
        tmp_path,
        cgroup="5:devices:/\n4:memory:/docker/abc\n0::/\n",
        files={
            "memory/memory.limit_in_bytes": unlimited,
            "memory/memory.usage_in_bytes": "900000000\n",
            "memory/docker/abc/memory.limit_in_bytes": "6000000000\n",
            "memory/docker/abc/memory.usage_in_bytes": "2000000000\n",
            "memory/docker/abc/memory.stat": "cache 100\ntotal_inactive_file 1000000000\n",
        },
        available_kib=20_000_000,
    )
    limit = available_memory("cpu", rlimit_as=NO_RLIMIT, **paths)
    assert limit.source == "cgroup"
    assert limit.available == 6_000_000_000 - 1_000_000_000
    # nothing but the unlimited root: no cgroup limit
    (tmp_path / "cgroup/memory/docker/abc/memory.limit_in_bytes").write_text(unlimited)
    memory.forget_cgroup_discovery()
    assert available_memory("cpu", rlimit_as=NO_RLIMIT, **paths).source == "available RAM"


def test_rlimit_as_minus_virtual_size(tmp_path):
    pages = 250_000
    paths = _fake_system(tmp_path, statm_pages=pages, available_kib=20_000_000)
    limit = available_memory("cpu", rlimit_as=3 * GB, **paths)
    assert limit.source == "RLIMIT_AS"
    assert limit.available == 3 * GB - pages * resource.getpagesize()
    assert "3.0 GB" in limit.detail


def test_meminfo_available(tmp_path):
    paths = _fake_system(tmp_path, available_kib=5_000_000)
    limit = available_memory("cpu", rlimit_as=NO_RLIMIT, **paths)
    assert (limit.source, limit.available) == ("available RAM", 5_000_000 * 1024)


def test_missing_and_garbage_sources_are_ignored(tmp_path):
    paths = _fake_system(tmp_path, cgroup="garbage\n", files={"memory.max": "lots\n"})
    (tmp_path / "meminfo").write_text("MemAvailable: many kB\n")
    (paths["proc_self"] / "statm").write_text("\n")
    assert memory_limits("cpu", rlimit_as=2 * GB, **paths) == []
    assert available_memory_bytes("cpu", rlimit_as=2 * GB, **paths) is None
    nowhere = dict(cgroup_root=tmp_path / "no", proc_self=tmp_path / "no", meminfo=tmp_path / "no")
    assert available_memory("cpu", rlimit_as=NO_RLIMIT, **nowhere) is None


def test_this_machine_reports_something_cheaply():
    limit = available_memory("cpu")
    assert limit is not None and limit.available > 0  # Linux: MemAvailable at least


# -- the check in Potential.evaluate ------------------------------------------------------
class Hungry(Potential):
    """Zero energy and forces, with the memory model of a big network."""

    name = "hungry"
    elements = frozenset({14, 29})
    cutoff = 5.0
    memory_per_atom_bytes = 300e3
    memory_per_pair_bytes = 5e3
    memory_overhead_bytes = 20e6

    def __init__(self):
        super().__init__()
        self.calls = 0

    def _evaluate(self, structures, properties):
        self.calls += 1
        return [{"energy": 0.0, "forces": np.zeros((len(a), 3))} for a in structures]


@pytest.fixture
def small_limit(monkeypatch):
    limit = MemoryLimit(2 * GB, "RLIMIT_AS", "soft limit 3.0 GB (ulimit -v), 1.0 GB already mapped")
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu", **_: limit)
    monkeypatch.delenv(memory.ENV_VAR, raising=False)
    return limit


def test_too_large_a_structure_raises_before_any_work(small_limit):
    pot = Hungry()
    big = si(10)  # 8,000 atoms: ~3 GB by these constants
    with pytest.raises(MemoryLimitError) as info:
        pot.evaluate([big])
    assert pot.calls == 0
    err = info.value
    assert isinstance(err, InputError)
    assert err.estimate.bytes > small_limit.available and err.limit is small_limit
    text = str(err)
    assert f"{err.estimate.bytes / GB:.1f} GB" in text and "8,000 atoms" in text
    assert "2.0 GB" in text and "RLIMIT_AS" in text
    for fix in (
        "smaller cell",
        "fewer structures",
        "GPU",
        "nnp_lab.models.distill",
        memory.ENV_VAR,
    ):
        assert fix in text


def test_many_structures_together_count_together(small_limit):
    pot = Hungry()
    cell = si(5)  # 1,000 atoms, fine alone
    pot.evaluate([cell])
    with pytest.raises(MemoryLimitError, match="8 structures"):
        pot.evaluate([cell] * 8)


def test_opt_outs(small_limit, monkeypatch):
    pot = Hungry()
    big = si(10)
    pot.evaluate([big], memory_check=False, validate=False)
    monkeypatch.setenv(memory.ENV_VAR, "0")
    pot.evaluate([big], validate=False)
    assert pot.calls == 2


def test_small_calls_do_not_read_the_limits(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("limits read for a small call")

    monkeypatch.setattr(memory, "available_memory", fail)
    pot = Hungry()
    pot.evaluate([si(1)])
    assert pot.calls == 1


def test_dispersion_runs_after_the_model_so_the_larger_estimate_counts():
    from nnp_lab.potentials.d3 import D3Dispersion

    pot = Hungry()
    cell = si(3)
    alone = pot.memory_estimate(cell)
    d3 = D3Dispersion.__new__(D3Dispersion)  # constants and cutoff only, no torch-dftd
    d3.cutoff = 20.0
    pot.dispersion = d3
    combined = pot.memory_estimate([cell])
    assert combined.bytes == max(alone.bytes, d3.memory_estimate([cell]).bytes)
    assert combined.what.startswith("D3")  # 20 Å: ~850 pairs per Si atom, D3 needs more
    assert pot._memory_upper_bound(len(cell)) >= combined.bytes


def test_cuda_limit_is_named(monkeypatch):
    limit = MemoryLimit(1 * GB, "CUDA free memory", "cuda: 1.0 GB free of 80.0 GB")
    with pytest.raises(MemoryLimitError, match="CUDA free memory") as info:
        memory.check_memory(
            peak_bytes([si(10)], 5.0, per_atom=300e3, per_pair=5e3), "cuda", limit=limit
        )
    assert "GPU with more free memory" in str(info.value)


def test_every_model_has_a_memory_model():
    from nnp_lab.potentials.chgnet import CHGNetPotential
    from nnp_lab.potentials.d3 import D3Dispersion
    from nnp_lab.potentials.emt import EMTPotential
    from nnp_lab.potentials.sevennet import SevenNetPotential
    from nnp_lab.potentials.sevennet_fast import SevenNetFastPotential
    from nnp_lab.potentials.torch_model import TorchModelPotential

    from nnp_lab.potentials.torch_model import MEMORY_MODELS, LennardJones

    for cls in (SevenNetFastPotential, SevenNetPotential, CHGNetPotential, D3Dispersion):
        per_atom, per_pair = cls.memory_per_atom_bytes, cls.memory_per_pair_bytes
        assert per_atom >= 0 and per_pair >= 0 and per_atom + per_pair > 0, cls
    assert CHGNetPotential.memory_per_triplet_bytes > 0
    assert min(MEMORY_MODELS["default"][:2]) >= 0 and sum(MEMORY_MODELS["default"]) > 0
    lj = TorchModelPotential(LennardJones(elements=[29]))  # an architecture not measured
    assert lj.memory_per_pair_bytes == MEMORY_MODELS["default"][1]
    lj64 = TorchModelPotential(LennardJones(elements=[29]), dtype="float64")
    assert lj64.memory_per_pair_bytes == 2 * MEMORY_MODELS["default"][1]
    assert EMTPotential.memory_per_atom_bytes < 10e3  # EMT: tiny, effectively unchecked
    assert Potential.memory_per_atom_bytes == 0  # neutral default: no check


# -- the real thing: SevenNet-0 in a process with little address space --------------------
_LIMITED = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    from ase.build import bulk
    import nnp_lab
    from nnp_lab.potentials.memory import MemoryLimitError

    pot = nnp_lab.load_potential("sevennet-0", device="cpu")
    out = {{}}
    # 512 atoms, estimated ~0.3 GB: checked against the limit, and fits
    assert pot.memory_estimate(bulk("Si", cubic=True) * (4, 4, 4)).bytes > 2**28
    small = pot.evaluate([bulk("Si", "diamond", a=5.43, cubic=True) * (4, 4, 4)])
    out["small_energy"] = small[0]["energy"]
    big = bulk("Si", "diamond", a=5.43, cubic=True) * (16, 16, 16)  # 32,768 atoms
    try:
        pot.evaluate([big])
    except MemoryLimitError as exc:
        out["error"] = str(exc)
        out["estimate"] = exc.estimate.bytes
        out["available"] = exc.limit.available
        out["source"] = exc.limit.source
    out["after"] = pot.evaluate([bulk("Si", "diamond", a=5.43, cubic=True)])[0]["energy"]
    sys.stdout.write(json.dumps(out) + "\\n")
    """
)


@pytest.mark.slow
def test_sevennet_refuses_32768_atoms_under_rlimit_as_and_keeps_working():
    limit = 3 * GB  # torch + SevenNet-0 map ~1.1 GB; the 32,768-atom call needs ~13 GB
    env = {k: v for k, v in os.environ.items() if k != memory.ENV_VAR}
    env["NNP_LAB_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", _LIMITED.format(limit=limit)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "can't allocate memory" not in proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert np.isfinite(out["small_energy"]) and np.isfinite(out["after"])
    assert out["source"] == "RLIMIT_AS"
    assert out["estimate"] > 8 * GB and 0 < out["available"] < limit
    message = out["error"]
    assert f"{out['estimate'] / GB:.1f} GB" in message and "32,768 atoms" in message
    assert f"{out['available'] / GB:.1f} GB" in message and "RLIMIT_AS" in message
