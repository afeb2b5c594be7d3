"""``dnacnn simulate ...`` and ``dnacnn data ...``: make datasets (Parquet + dataset.json)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from dnacnn.cli import app
from dnacnn.cli.errors import path_option, user_errors

simulate_app = typer.Typer(help="Simulate the model family's tasks (synthetic truth included).",
                           no_args_is_help=True)
data_app = typer.Typer(help="Build datasets from real files (FASTA, BED, labels) with Ray Data.",
                       no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")
app.add_typer(data_app, name="data")

_OUT = path_option(..., "--out", help="Dataset folder to write (train/ valid/ test/ dataset.json).")


def _pairs(values: list[str], what: str) -> dict[str, list[str]]:
    """NAME=PATH options -> {NAME: [PATH, ...]} in the order given."""
    out: dict[str, list[str]] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{what} {value!r} must be NAME=PATH, e.g. human=hg19.fa")
        out.setdefault(name, []).append(path)
    return out


def _split_config(method: str, valid_chroms: str, test_chroms: str, block_size: int,
                  valid_fraction: float, test_fraction: float, seed: int):
    from dnacnn.data.splits import SplitConfig

    def names(text: str) -> tuple[str, ...]:
        return tuple(c.strip() for c in text.split(",") if c.strip())

    return SplitConfig(method=method, valid_chroms=names(valid_chroms),
                       test_chroms=names(test_chroms), block_size=block_size,
                       valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)


def _echo(description) -> None:
    summary = {"name": description.name, "task_type": description.task_type,
               "tasks": len(description.tasks), "seq_len": description.seq_len,
               "rows": description.rows}
    if description.records:
        summary["records"] = description.records
    typer.echo(json.dumps(summary, indent=2))


def _check_out(out: Path) -> None:
    from dnacnn.output_folder import check_output_folder

    check_output_folder(out, "--out")


# Options shared by the commands that split genomic windows.
_METHOD = typer.Option("chrom", help="Split by `chrom` (held-out chromosomes) or `block` (hashed blocks).")
_VALID_CHROMS = typer.Option("", help="Comma-separated validation chromosomes (chrom method).")
_TEST_CHROMS = typer.Option("", help="Comma-separated test chromosomes (chrom method).")
_BLOCK = typer.Option(1_000_000, min=1, help="Block size in bp (block method).")
_VALID_FRACTION = typer.Option(0.1, min=0.0, max=1.0,
                               help="Share of blocks for validation (block method).")
_TEST_FRACTION = typer.Option(0.1, min=0.0, max=1.0, help="Share of blocks for test (block method).")
_SPLIT_SEED = typer.Option(0, min=0, help="Seed of the block assignment.")
_SEED = typer.Option(0, min=0, help="Random seed.")
_ADDRESS = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS, else a local cluster).")


# ---------------------------------------------------------------- simulate


@simulate_app.command("tutorial")
def simulate_tutorial(
    out: Path = _OUT,
    multiclass: bool = typer.Option(False, "--multiclass", help="Four classes (promoter, splice "
                                    "site, regulatory element, background) instead of binary."),
    n_samples: int = typer.Option(10_000, min=4, help="Sequences in all."),
    length: int = typer.Option(200, min=1, help="bp per sequence."),
    seed: int = typer.Option(42, min=0, help="Random seed."),
) -> None:
    """The tutorial's task: binary motif (TATAAA/CAAT/GGGCGG/TTGACA) vs random (+30% decoys),
    or with --multiclass four classes of motifs."""
    with user_errors():
        from dnacnn.data.simulate_tutorial import TutorialConfig, write_tutorial

        config = TutorialConfig(n_samples=n_samples, length=length, seed=seed)
        _check_out(out)
        _echo(write_tutorial(out, config, multiclass=multiclass))


@simulate_app.command("accessibility")
def simulate_accessibility(
    out: Path = _OUT,
    genome: Path = path_option(None, help="Indexed FASTA of a real genome (default: GRCh37 chr20 "
                                           "from Debian's vt-examples, fetched into --data-dir)."),
    data_dir: Path = path_option(Path("data"), help="Where vt-examples is unpacked."),
    tasks_file: Path = path_option(None, help="Cell-type names, one a line (default: the 164 "
                                               "Basset cell types)."),
    meme: Path = path_option(None, help="MEME file to take the factor matrices from "
                                         "(default: JASPAR 2024 from pyjaspar)."),
    n_windows: int = typer.Option(40_000, min=1, help="Windows in the dataset."),
    length: int = typer.Option(600, min=1, help="bp per window."),
    label_noise: float = typer.Option(0.02, min=0.0, max=0.5,
                                      help="Probability of a flipped label."),
    motif_fraction: float = typer.Option(0.4, min=0.0, max=1.0,
                                         help="Share of windows with motif instances."),
    n_breaking: int = typer.Option(200, min=0, help="Motif-breaking variants."),
    n_neutral: int = typer.Option(200, min=0, help="Neutral variants."),
    block_size: int = typer.Option(500_000, min=1, help="Split block size, bp."),
    seed: int = _SEED,
) -> None:
    """Many-cell-type accessibility on a real genome with JASPAR motifs, truth and a VCF."""
    with user_errors():
        from dnacnn.data.simulate_accessibility import AccessibilityConfig
        from dnacnn.data.simulate_accessibility import simulate_accessibility as simulate
        from dnacnn.data.splits import SplitConfig

        config = AccessibilityConfig(
            n_windows=n_windows, length=length, label_noise=label_noise,
            motif_fraction=motif_fraction, n_breaking=n_breaking, n_neutral=n_neutral,
            split=SplitConfig(method="block", block_size=block_size), seed=seed,
        )
        _check_out(out)
        if tasks_file is not None:
            if not Path(tasks_file).is_file():
                raise FileNotFoundError(f"--tasks-file {tasks_file} not found")
            tasks = [t.strip() for t in Path(tasks_file).read_text().splitlines() if t.strip()]
        else:
            from dnacnn.models import basset_cell_types

            tasks = basset_cell_types()
        if meme is not None and not Path(meme).is_file():
            raise FileNotFoundError(f"--meme {meme} not found")
        if genome is None:  # last: it may download
            from dnacnn.reference_data import fetch_vt_examples

            genome = fetch_vt_examples(data_dir).chr20_fasta
        _echo(simulate(genome, out, tasks, config, meme=meme))


@simulate_app.command("species")
def simulate_species(
    out: Path = _OUT,
    genome: list[str] = typer.Option(..., help="NAME=FASTA, repeated (a species may have several "
                                               "files); the first species is the positive class."),
    length: int = typer.Option(200, min=1, help="bp per fragment."),
    n_per_species: int = typer.Option(0, min=0,
                                      help="At most this many windows per species (0: all)."),
    block_size: int = typer.Option(10_000, min=1, help="Split block size, bp."),
    seed: int = _SEED,
) -> None:
    """Species of origin of genome fragments (e.g. human vs mouse), balanced, block split."""
    with user_errors():
        from dnacnn.data.simulate_species import SpeciesConfig
        from dnacnn.data.simulate_species import simulate_species as simulate
        from dnacnn.data.splits import SplitConfig

        config = SpeciesConfig(
            length=length, n_per_species=n_per_species or None, seed=seed,
            split=SplitConfig(method="block", block_size=block_size,
                              valid_fraction=0.15, test_fraction=0.15, seed=seed),
        )
        genomes = _pairs(genome, "--genome")
        _check_out(out)
        _echo(simulate(genomes, out, config))


# ---------------------------------------------------------------- data


@data_app.command("tiles")
def data_tiles(
    fasta: Path = path_option(..., help="Indexed FASTA."),
    out: Path = _OUT,
    length: int = typer.Option(600, min=1, help="Window length, bp."),
    stride: int = typer.Option(0, min=0, help="bp between window starts (0: the window length)."),
    regions: Path = path_option(None, help="BED of regions to tile (default: every contig)."),
    max_n_fraction: float = typer.Option(1.0, min=0.0, max=1.0,
                                         help="Drop windows with more N than this."),
    split_method: str = _METHOD, valid_chroms: str = _VALID_CHROMS, test_chroms: str = _TEST_CHROMS,
    block_size: int = _BLOCK, valid_fraction: float = _VALID_FRACTION,
    test_fraction: float = _TEST_FRACTION, split_seed: int = _SPLIT_SEED,
    address: str = _ADDRESS,
) -> None:
    """Tile a genome into one-hot windows, unlabelled (no held-out chromosomes: all in train/)."""
    with user_errors():
        from dnacnn.ray_cluster import ask_for_default_auth, init_ray

        ask_for_default_auth(address)  # before the data modules import Ray
        from dnacnn.data.bed import read_bed
        from dnacnn.data.dataset_io import DatasetDescription
        from dnacnn.data.tile_source import GenomeTiles, TileConfig, read_genome_tiles
        from dnacnn.data.writer import write_dataset

        splits = _split_config(split_method, valid_chroms, test_chroms, block_size,
                               valid_fraction, test_fraction, split_seed)
        _check_out(out)
        if regions is not None and not Path(regions).is_file():
            raise FileNotFoundError(f"--regions {regions} not found")
        region_list = read_bed(regions) if regions is not None else None
        # every region checked against the genome, and the windows planned, before Ray starts
        plan = GenomeTiles(fasta, TileConfig(length, stride or length, max_n_fraction),
                           region_list, splits)
        init_ray(address)
        description = DatasetDescription(
            name=f"tiles_{Path(fasta).name}", task_type="multitask", tasks=[], seq_len=length,
            splits=splits.to_dict(),
            sources={"fasta": str(fasta), "regions": regions and str(regions)},
            extra={"unlabelled": True, "stride": stride or length, "max_n_fraction": max_n_fraction},
        )
        _echo(write_dataset(out, description, lambda split: read_genome_tiles(
            fasta, length, stride or length, region_list, max_n_fraction, splits=splits,
            split=split), account=plan.account))


@data_app.command("intervals")
def data_intervals(
    fasta: Path = path_option(..., help="Indexed FASTA."),
    intervals: Path = path_option(..., help="Label table (header: chrom start end TASK...) or, "
                                             "with --peaks, a BED of regions."),
    out: Path = _OUT,
    peaks: list[str] = typer.Option(None, help="TASK=peaks.bed, repeated: label = overlap."),
    length: int = typer.Option(600, min=1, help="Window length, bp (centred on each interval)."),
    min_overlap: int = typer.Option(1, min=1, help="bp of overlap with a peak for label 1."),
    split_method: str = _METHOD, valid_chroms: str = _VALID_CHROMS, test_chroms: str = _TEST_CHROMS,
    block_size: int = _BLOCK, valid_fraction: float = _VALID_FRACTION,
    test_fraction: float = _TEST_FRACTION, split_seed: int = _SPLIT_SEED,
    address: str = _ADDRESS,
) -> None:
    """Labelled intervals: one window per interval, labels per task.

    Records on contigs the genome lacks, past a contig's end, across split blocks
    or with an all-N window are skipped, counted by reason under "records"."""
    with user_errors():
        from dnacnn.ray_cluster import ask_for_default_auth, init_ray

        ask_for_default_auth(address)  # before the data modules import Ray
        from dnacnn.data.dataset_io import DatasetDescription
        from dnacnn.data.interval_source import IntervalConfig, LabelledIntervals, read_intervals
        from dnacnn.data.writer import write_dataset

        peak_map = None
        if peaks:
            peak_map = {}
            for name, paths in _pairs(peaks, "--peaks").items():
                if len(paths) > 1:
                    raise ValueError(f"task {name!r} is given more than one peak file")
                peak_map[name] = paths[0]
        splits = _split_config(split_method, valid_chroms, test_chroms, block_size,
                               valid_fraction, test_fraction, split_seed)
        _check_out(out)
        # every line parsed and checked against the genome before Ray starts
        source = LabelledIntervals(fasta, intervals, IntervalConfig(length, min_overlap),
                                   peak_map, splits)
        scan = source.scan()
        init_ray(address)
        description = DatasetDescription(
            name=f"intervals_{Path(intervals).stem}",
            task_type="binary" if len(source.tasks) == 1 else "multitask", tasks=source.tasks,
            seq_len=length, splits=splits.to_dict(),
            sources={"fasta": str(fasta), "intervals": str(intervals), "peaks": peak_map},
            extra={"min_overlap": min_overlap},
        )
        _echo(write_dataset(out, description, lambda split: read_intervals(
            fasta, intervals, length, peaks=peak_map, min_overlap=min_overlap,
            splits=splits, split=split), account=scan.account))


@data_app.command("fasta")
def data_fasta(
    cls: list[str] = typer.Option(..., "--class", help="NAME=FASTA, one per class, repeated; "
                                                       "the first class is positive (binary)."),
    out: Path = _OUT,
    length: int = typer.Option(0, min=0, max=1 << 20,  # labelled_fasta.MAX_LENGTH, not imported
                               help="bp per sequence, at most 1,048,576 (0: the longest record "
                                    "that is written)."),
    multiclass: bool = typer.Option(False, "--multiclass", help="One-hot labels even for 2 classes."),
    valid_chroms: str = typer.Option("chr8", help="Comma-separated validation chromosomes."),
    test_chroms: str = typer.Option("chr9", help="Comma-separated test chromosomes."),
) -> None:
    """One FASTA per class (headers chrN:start-end): split by chromosome.

    Empty and all-N records are skipped and duplicate names warned about, counted
    under "records"."""
    with user_errors():
        from dnacnn.data.labelled_fasta import LabelledFastaConfig, labelled_fasta_dataset

        classes = {}
        for name, paths in _pairs(cls, "--class").items():
            if len(paths) > 1:
                raise ValueError(f"class {name!r} is given more than one FASTA")
            classes[name] = paths[0]
        split = _split_config("chrom", valid_chroms, test_chroms, 1, 0.1, 0.1, 0)
        config = LabelledFastaConfig(length=length or None, multiclass=multiclass, split=split)
        _check_out(out)
        _echo(labelled_fasta_dataset(classes, out, config))
