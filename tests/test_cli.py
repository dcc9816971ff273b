"""nnp-lab command line: round trips through files, progress bars, one-line errors."""

import subprocess
import sys

import numpy as np
import pytest
from ase.build import add_adsorbate, bulk, fcc100
from ase.constraints import FixAtoms
from ase.io import read, write

from nnp_lab.cli import main


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "nnp_lab.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_models_lists_every_registered_model(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("sevennet-0", "chgnet-0.3.0", "emt"):
        assert name in out
    assert "level_of_theory" in out and "licence" in out


def test_relax_round_trip(tmp_path, capsys):
    atoms = bulk("Cu", "fcc", 3.7, cubic=True)
    atoms.rattle(0.05, seed=1)
    src, out = tmp_path / "in.xyz", tmp_path / "out.cif"
    write(src, atoms)
    code = main(
        [
            "relax",
            str(src),
            "-o",
            str(out),
            "--cell",
            "--model",
            "emt",
            "--fmax",
            "0.01",
            "--optimizer",
            "BFGS",
        ]
    )
    assert code == 0
    relaxed = read(out)
    assert len(relaxed) == 4
    assert relaxed.cell.lengths()[0] == pytest.approx(3.59, abs=0.02)  # EMT's Cu lattice constant
    assert "converged" in capsys.readouterr().out


def test_md_writes_trajectory(tmp_path, capsys):
    src, traj = tmp_path / "cu.traj", tmp_path / "md.traj"
    write(src, bulk("Cu", cubic=True) * (2, 2, 2))
    code = main(
        [
            "md",
            str(src),
            "--ensemble",
            "nvt",
            "-T",
            "300",
            "--steps",
            "20",
            "--interval",
            "5",
            "-o",
            str(traj),
            "--model",
            "emt",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    frames = read(traj, ":")
    assert len(frames) == 5  # steps 0, 5, 10, 15, 20
    assert "mean T" in capsys.readouterr().out


def test_md_pressure_in_GPa_and_the_deprecated_bar_option(tmp_path, capsys):
    src = tmp_path / "cu.traj"
    write(src, bulk("Cu", cubic=True) * (2, 2, 2))
    npt = [str(src), "--ensemble", "npt", "--thermostat", "nose-hoover", "--steps", "4"]
    npt += ["--interval", "2", "--model", "emt", "--seed", "1"]
    assert main(["md", *npt, "-o", str(tmp_path / "gpa.traj"), "--pressure-gpa", "2.0"]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert main(["md", *npt, "-o", str(tmp_path / "bar.traj"), "--pressure", "2e4"]) == 0
    assert "--pressure (bar) is deprecated" in capsys.readouterr().err
    gpa, bar = read(tmp_path / "gpa.traj", ":"), read(tmp_path / "bar.traj", ":")
    assert len(gpa) == len(bar) == 3
    assert [f.get_volume() for f in bar] == pytest.approx([f.get_volume() for f in gpa], rel=1e-12)
    both = ["--pressure", "2e4", "--pressure-gpa", "2.0"]
    assert main(["md", *npt, "-o", str(tmp_path / "both.traj"), *both]) == 2
    assert "give the pressure once" in capsys.readouterr().err


def test_neb_round_trip(tmp_path, capsys):
    slab = fcc100("Al", size=(2, 2, 3))
    add_adsorbate(slab, "Au", 1.7, "hollow")
    slab.center(axis=2, vacuum=4.0)
    slab.set_constraint(FixAtoms(mask=[a.symbol == "Al" for a in slab]))
    final = slab.copy()
    final.positions[-1, 0] += slab.cell[0, 0] / 2
    write(tmp_path / "a.traj", slab)
    write(tmp_path / "b.traj", final)
    band = tmp_path / "band.traj"
    code = main(
        [
            "neb",
            str(tmp_path / "a.traj"),
            str(tmp_path / "b.traj"),
            "--images",
            "3",
            "-o",
            str(band),
            "--model",
            "emt",
            "--fmax",
            "0.1",
            "--steps",
            "200",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    images = read(band, ":")
    assert len(images) == 5
    assert "forward barrier" in out
    energies = np.array([im.get_potential_energy() for im in images])
    assert energies.max() > energies[0]


def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path):
    proc = run_cli(
        "relax", str(tmp_path / "missing.xyz"), "-o", str(tmp_path / "o.xyz"), "--model", "emt"
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "does not exist" in proc.stderr


def test_unknown_model_is_a_one_line_error(tmp_path):
    write(tmp_path / "cu.xyz", bulk("Cu"))
    proc = run_cli("evaluate", str(tmp_path / "cu.xyz"), "--model", "nope")
    assert proc.returncode == 2
    assert "unknown potential 'nope'" in proc.stderr and "sevennet-0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_uncovered_element_error(tmp_path, capsys):
    write(tmp_path / "si.xyz", bulk("Si"))
    assert main(["evaluate", str(tmp_path / "si.xyz"), "--model", "emt"]) == 2
    assert "Si" in capsys.readouterr().err


def test_evaluate_prints_energy(tmp_path, capsys):
    write(tmp_path / "cu.xyz", bulk("Cu", cubic=True))
    assert main(["evaluate", str(tmp_path / "cu.xyz"), "--model", "emt"]) == 0
    out = capsys.readouterr().out
    assert "energy:" in out and "stress (GPa" in out


def test_progress_bar_on_stderr(tmp_path):
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=2)
    write(tmp_path / "in.xyz", atoms)
    proc = run_cli(
        "relax", str(tmp_path / "in.xyz"), "-o", str(tmp_path / "o.xyz"), "--model", "emt"
    )
    assert proc.returncode == 0, proc.stderr
    assert "relax" in proc.stderr and "step" in proc.stderr  # tqdm bar


def test_property_commands_print_the_result_and_write_json(tmp_path, capsys):
    import json

    from ase.build import bulk
    from ase.io import write

    path = tmp_path / "cu.cif"
    write(path, bulk("Cu", "fcc", a=3.6, cubic=True))
    out = tmp_path / "eos.json"
    assert main(["eos", str(path), "--model", "emt", "--points", "7", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "EOSResult" in printed and "GPa" in printed
    data = json.loads(out.read_text())
    assert data["type"] == "EOSResult" and len(data["volumes_A3"]) == 7
    assert 120 < data["bulk_modulus_GPa"] < 150  # EMT Cu: 134 GPa
    assert main(["vacancy", str(path), "--model", "emt", "--no-relax", "--min-length", "7"]) == 0
    assert "VacancyResult" in capsys.readouterr().out
    # bad input: one line on stderr, exit code 2
    assert main(["surface", str(path), "--model", "emt", "--miller", "0", "0", "0"]) == 2
    assert "names no plane" in capsys.readouterr().err


def test_screen_command_writes_the_database_and_shows_it(tmp_path, capsys):
    from ase.build import bulk
    from ase.io import write

    for k in range(3):
        a = bulk("Cu", "fcc", a=3.58 + 0.02 * k, cubic=True)
        a.rattle(0.03, seed=k)
        write(tmp_path / f"c{k}.cif", a)
    db = str(tmp_path / "out.db")
    assert (
        main(["screen", str(tmp_path / "*.cif"), "--task", "relax", "--db", db, "--model", "emt"])
        == 0
    )
    assert "3 done" in capsys.readouterr().out
    assert main(["screen", "--db", db, "--show", "--sort", "energy"]) == 0
    table = capsys.readouterr().out
    assert table.count("Cu4") == 3 and "n_steps" in table
