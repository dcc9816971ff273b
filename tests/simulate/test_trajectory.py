"""Trajectories survive what users do to runs: kill -9, Ctrl-C, stop()."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from ase.cluster import Icosahedron
from ase.io import read

from nnp_lab.potentials import load_potential
from nnp_lab.simulate import MolecularDynamics
from nnp_lab.simulate import Relaxation, relax

CHILD = textwrap.dedent(
    """
    import sys
    from ase.build import bulk
    from nnp_lab.simulate import md

    md(bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2), "emt", temperature_K=300,
       timestep_fs=2.0, steps=1_000_000, interval=1, trajectory=sys.argv[1], seed=0)
    """
)


def count_frames(path) -> int:
    """Frames ASE can read right now (0 while the file is missing or mid-header)."""
    try:
        return len(read(path, ":"))
    except Exception:  # noqa: BLE001 - a file being written may not parse yet
        return 0


def test_md_trajectory_survives_kill_9(tmp_path):
    path = tmp_path / "killed.traj"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wanted = 8
    try:
        deadline = time.monotonic() + 120
        while count_frames(path) < wanted:
            if proc.poll() is not None:
                pytest.fail(f"the MD child exited early: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the MD child wrote no trajectory frames within 120 s")
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    frames = read(path, ":")
    assert len(frames) >= wanted
    energies = np.array([f.get_potential_energy() for f in frames])
    assert np.all(np.isfinite(energies))
    assert [f.info["step"] for f in frames] == list(range(len(frames)))
    assert all(f.get_velocities().shape == (32, 3) for f in frames)


def test_keyboard_interrupt_returns_a_partial_relaxation(tmp_path):
    path = tmp_path / "interrupted.traj"
    atoms = Icosahedron("Cu", 2)
    atoms.rattle(0.1, seed=1)
    run = Relaxation(atoms, "emt", fmax=1e-4, trajectory=path)

    def ctrl_c(event):
        if event.step == 5:
            raise KeyboardInterrupt

    run.subscribe(ctrl_c)
    with pytest.warns(UserWarning, match="interrupted"):
        result = run.run()
    assert result.stopped and not result.converged
    assert result.n_steps == 5 and len(result.frames) == 6
    frames = read(path, ":")
    assert len(frames) == 6
    assert np.allclose(frames[-1].positions, result.atoms.positions)
    assert frames[-1].get_potential_energy() == pytest.approx(result.energy)


def test_keyboard_interrupt_through_relax_function(tmp_path, monkeypatch):
    """``relax()`` itself returns the partial result on Ctrl-C (no traceback, file kept)."""
    path = tmp_path / "interrupted2.traj"
    atoms = Icosahedron("Cu", 2)
    atoms.rattle(0.1, seed=2)
    original = Relaxation._record

    def record_then_interrupt(self, target, step, converged):
        event = original(self, target, step, converged)
        if step == 5:
            raise KeyboardInterrupt
        return event

    monkeypatch.setattr(Relaxation, "_record", record_then_interrupt)
    with pytest.warns(UserWarning, match="interrupted"):
        result = relax(atoms, load_potential("emt"), fmax=1e-4, trajectory=path)
    assert result.stopped
    assert len(read(path, ":")) == len(result.frames) == 6


def test_keyboard_interrupt_in_md_keeps_frames(tmp_path):
    path = tmp_path / "md_interrupted.traj"
    atoms = Icosahedron("Cu", 2)
    run = MolecularDynamics(atoms, "emt", steps=100, interval=2, trajectory=path, seed=0)

    def ctrl_c(event):
        if event.step == 6:
            raise KeyboardInterrupt

    run.subscribe(ctrl_c)
    with pytest.warns(UserWarning, match="interrupted"):
        result = run.run()
    assert result.stopped
    assert [f.info["step"] for f in read(path, ":")] == [0, 2, 4, 6]
    assert result.n_steps == 6
