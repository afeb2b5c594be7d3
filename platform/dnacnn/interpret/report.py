"""The interpretation reports: tables, plots, a MEME file and one index.html per folder.

Each report computes with the pure functions of this package, writes its files to
``out_dir`` and returns a summary dict; ``index.html`` links every output.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dnacnn.data.motifs import Motif, jaspar_collection, write_meme
from dnacnn.interpret import plots
from dnacnn.interpret.attention import attention_maps, site_attention
from dnacnn.interpret.filters import filter_motifs
from dnacnn.interpret.influence import filter_influence
from dnacnn.interpret.inputs import Sequences, Variant
from dnacnn.interpret.ism import SCALES, importance, ism
from dnacnn.interpret.matching import recovered_factors, run_tomtom, significant_matches
from dnacnn.models import LoadedModel
from dnacnn.sequence import ALPHABET


def fresh_folder(out: Path, outputs: Sequence[str]) -> None:
    """Create ``out`` and remove the files an earlier report of the same kind left there
    (``outputs``: glob patterns, e.g. ``ism_*.png``): the folder, and what is logged from
    it, is then this report's alone, not mixed with a longer earlier run's figures."""
    out.mkdir(parents=True, exist_ok=True)
    for pattern in outputs:
        for path in out.glob(pattern):
            if path.is_file():
                path.unlink()


def write_index(out_dir: Path, title: str, summary: dict, tables: Sequence[str],
                images: Sequence[tuple[str, str]]) -> Path:
    """``index.html``: the summary, links to the tables and files this report wrote (``tables``
    that it did not write, an influence table without labels say, are left out), the images
    with captions."""
    tables = [t for t in tables if (out_dir / t).is_file()]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em} figure{display:inline-block;margin:.5em}"
             " img{max-width:100%} figcaption{font-size:small}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<pre>{html.escape(json.dumps(summary, indent=2, default=str))}</pre>", "<h2>Files</h2><ul>"]
    parts += [f"<li><a href='{html.escape(t)}'>{html.escape(t)}</a></li>" for t in tables]
    parts.append("</ul><h2>Figures</h2>")
    parts += [f"<figure><a href='{html.escape(src)}'><img src='{html.escape(src)}' alt='{html.escape(cap)}'>"
              f"</a><figcaption>{html.escape(cap)}</figcaption></figure>" for src, cap in images]
    parts.append("</body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def filter_report(
    loaded: LoadedModel,
    seqs: Sequences,
    out_dir: str | Path,
    targets: Sequence[Motif] | None = None,
    implanted: Sequence[Motif] | None = None,
    batch_size: int = 128,
    influence_sequences: int | None = 2000,
    max_logos: int | None = None,
) -> dict:
    """Filters as motifs: PFMs, information content, sites, influence, TomTom matches.

    Args:
        loaded: the model with its tasks and task type.
        seqs: the sequences (with labels, for the influence).
        targets: motifs to match against; default JASPAR 2024 CORE vertebrates (pyjaspar).
        implanted: motifs a simulator implanted; the summary then counts those recovered
            (the TomTom best match, q < 0.05, of at least one filter) and those matched
            (a TomTom match, q < 0.05, of at least one filter, best or not).
        influence_sequences: the influence is measured on the first this many sequences
            (the network after the first layer runs once per filter); None: all.
        max_logos: draw a logo figure for this many filters with sites, the most
            influential first (by information content without labels); None: all.
    Writes:
        filters.meme, filters.tsv, influence.parquet (filter x task), influence.png,
        logos/*.png, summary.json, index.html.
    Returns:
        the summary (also in summary.json), with seconds per step.
    """
    out = Path(out_dir)
    fresh_folder(out, ["filters.meme", "filters.tsv", "influence.parquet", "influence.png", "logos/*.png",
                       "summary.json", "index.html"])
    (out / "logos").mkdir(exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    found = filter_motifs(loaded.model, seqs.onehot, batch_size)
    motifs = found.motifs()
    write_meme(motifs, out / "filters.meme")
    seconds["pfm"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    targets = list(targets) if targets is not None else jaspar_collection()
    tomtom = run_tomtom(motifs, targets)
    matches = tomtom.best()
    seconds["tomtom"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    table = pd.DataFrame({"filter": found.names, "sites": found.sites,
                          "trimmed_width": [{m.id: m.width for m in motifs}.get(n, 0) for n in found.names],
                          "information_content": found.information_content(),
                          "max_activation": found.max_activation})
    if seqs.labels is not None:
        n = len(seqs.onehot) if influence_sequences is None else min(influence_sequences, len(seqs.onehot))
        influence, base_loss = filter_influence(loaded.model, seqs.onehot[:n], seqs.labels[:n],
                                                loaded.task_type, found.mean_activation, batch_size)
        table["influence"] = np.nanmean(influence, axis=1)  # NaN: a class without samples
        frame = pd.DataFrame(influence, columns=loaded.tasks)
        frame.insert(0, "filter", found.names)
        frame.to_parquet(out / "influence.parquet", index=False)
        plots.save(plots.plot_influence_heatmap(influence, found.names, loaded.tasks), out / "influence.png")
    seconds["influence"] = time.perf_counter() - t0
    table = table.merge(matches.rename(columns={"query": "filter"}), on="filter", how="left")
    table.to_csv(out / "filters.tsv", sep="\t", index=False, float_format="%.6g")

    t0 = time.perf_counter()
    images = [("influence.png", "influence by filter and task")] if seqs.labels is not None else []
    by_id = {t.id: t for t in targets}
    rows = table.set_index("filter")
    key = "influence" if "influence" in rows else "information_content"
    ranked = sorted(motifs, key=lambda m: -rows.at[m.id, key])
    for m in ranked if max_logos is None else ranked[:max_logos]:
        row = rows.loc[m.id]
        match = by_id.get(row["match_id"]) if isinstance(row["match_id"], str) else None
        caption = f"{m.id}: {row['sites']} sites, IC {row['information_content']:.1f}"
        match_title = f"{match.id} {match.name} (q={row['q_value']:.2g})" if match else ""
        axes = plots.plot_filter_logo(m.probs, caption, match.probs if match else None,
                                      match_title, row["strand"])
        images.append((f"logos/{m.id}.png", caption + (f"; {match_title}" if match else "")))
        plots.save(axes[0], out / images[-1][0])
    seconds["logos"] = time.perf_counter() - t0

    summary = {"filters": len(found.names), "with_sites": len(motifs),
               # filters whose best match is significant and covers both motifs' information
               # (a flat filter gets a tiny q against a long matrix from flat columns alone)
               "matched_q_0.05": len(significant_matches(matches)),
               "significant_q_0.05": int((table["q_value"] < 0.05).sum()),  # q alone, flat filters too
               "sequences": len(seqs.onehot), "targets": len(targets),
               "seconds": {k: round(v, 2) for k, v in seconds.items()}}
    if implanted is not None:
        names = {m.id: m.name for m in implanted}
        summary["implanted"] = len(implanted)
        # recovered: a filter's best match; matched: a significant match, best or not (a
        # same-family look-alike may match the filter a little better).
        for key, table in (("recovered", matches), ("matched", tomtom.to(list(names)))):
            found = recovered_factors(table, implanted)
            summary[key] = sum(bool(v) for v in found.values())
            summary[f"{key}_factors"] = {f"{k} {names[k]}": v for k, v in found.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_index(out, "Filters as motifs", summary,
                ["filters.tsv", "filters.meme", "influence.parquet", "summary.json"], images)
    return summary


def attention_report(loaded: LoadedModel, seqs: Sequences, out_dir: str | Path, pad: int = 3,
                     max_plots: int = 12, batch_size: int = 256) -> dict:
    """Attention maps of a multi-scale model, one track per branch, known sites marked.

    Writes attention.parquet (sequence, width, attention list of L), attention_sites.tsv
    (per sequence with a known site and branch: mass within site +- ``pad``, length
    share, enrichment), attention_*.png for the first ``max_plots`` sequences, index.html.
    Returns a summary: per branch width, the enrichment (mean mass / mean share) over all
    the known sites, and per motif (implanted motifs and decoys are told apart there).
    """
    out = Path(out_dir)
    fresh_folder(out, ["attention.parquet", "attention_sites.tsv", "attention_*.png", "summary.json", "index.html"])
    attention, widths = attention_maps(loaded.model, seqs.onehot, batch_size)  # (N, B, L)
    pd.DataFrame({
        "sequence": np.repeat(seqs.names, len(widths)),
        "width": np.tile(widths, len(seqs.names)),
        "attention": list(attention.reshape(-1, attention.shape[2])),
    }).to_parquet(out / "attention.parquet", index=False)
    summary: dict = {"sequences": len(seqs.names), "widths": list(widths)}
    first = seqs.sites.drop_duplicates("sequence") if len(seqs.sites) else seqs.sites
    if len(first):
        rows = first["sequence"].to_numpy(int)
        mass, share = site_attention(attention[rows], first["start"].to_numpy(), first["end"].to_numpy(), pad)
        sites = pd.DataFrame({"sequence": np.repeat([seqs.names[i] for i in rows], len(widths)),
                              "motif": np.repeat(first["motif"].to_numpy(), len(widths)),
                              "width": np.tile(widths, len(rows)), "mass": mass.reshape(-1),
                              "share": np.repeat(share, len(widths))})
        sites["enrichment"] = sites["mass"] / sites["share"]
        sites.to_csv(out / "attention_sites.tsv", sep="\t", index=False, float_format="%.6g")
        summary["sites"] = len(rows)
        summary["pad_bp"] = pad
        summary["mean_mass"] = {int(w): float(mass[:, b].mean()) for b, w in enumerate(widths)}
        summary["mean_share"] = float(share.mean())
        summary["enrichment"] = {int(w): float(mass[:, b].mean() / share.mean()) for b, w in enumerate(widths)}
        summary["enrichment_by_motif"] = {
            str(motif): {int(w): float(group["mass"][group["width"] == w].mean()
                                       / group["share"][group["width"] == w].mean()) for w in widths}
            for motif, group in sites.groupby("motif")}
    images = []
    for i in range(min(max_plots, len(seqs.names))):
        here = seqs.sites[seqs.sites["sequence"] == i]
        axes = plots.plot_attention(attention[i], widths, list(zip(here["start"], here["end"])),
                                    f"{seqs.names[i]}" + (f" ({', '.join(map(str, here['motif']))})"
                                                          if len(here) else ""))
        images.append((f"attention_{i}.png", f"attention of each branch, {seqs.names[i]}"))
        plots.save(axes, out / images[-1][0])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_index(out, "Attention maps", summary,
                ["attention.parquet", "attention_sites.tsv", "summary.json"], images)
    return summary


def variant_summary(variant: Variant, effects: np.ndarray, tasks: Sequence[str]) -> dict:
    """The variant as given and what the mutagenesis of its window did with it.

    The mutagenesis is of the reference window; ALT is not applied. For an SNV to A, C, G
    or T, ``effect`` is its entry of the ISM: the prediction with ALT minus that with the
    reference, per task; any other variant is not a single-base substitution, and has none.

    Args:
        effects: (L, 4, t) the window's ISM, for ``tasks``.
    """
    entry = {"chrom": variant.chrom, "pos": variant.pos, "ref": variant.ref, "alt": variant.alt,
             "kind": variant.kind, "position": variant.index}
    if variant.kind == "SNV" and variant.alt in ALPHABET:
        base = ALPHABET.index(variant.alt)
        entry["ism"] = ("of the reference window; effect: ALT - REF, the ISM entry of ALT at position "
                        "(0-based in the window, as in ism.parquet)")
        entry["effect"] = {t: float(effects[variant.index, base, k]) for k, t in enumerate(tasks)}
    else:
        entry["ism"] = ("of the reference window; ALT is not applied: only a substitution by A, C, G or T "
                        "of one base is an ISM entry (dnacnn score scores any variant)")
    return entry


#: Sequences per call of ``ism`` in :func:`ism_report` (each call holds (n, L, 4, T) arrays).
ISM_CHUNK = 64

#: Longest sequence ISM takes (bp): 3 mutants a base, each a whole sequence through the model
#: (a multi-scale model takes any length: 2 kb took 20 s on 2 CPU cores, 20 kb ran out of patience).
MAX_ISM_LENGTH = 4_096


def ism_report(loaded: LoadedModel, seqs: Sequences, out_dir: str | Path,
               tasks: Sequence[str] | None = None, scale: str = "probability",
               batch_size: int = 256, max_plots: int = 12) -> dict:
    """Saturation mutagenesis of each sequence, for the chosen tasks (default: the first 4).

    Writes ism.parquet (sequence, position, ref, base, one column per task: mutant -
    reference) and importance.parquet (sequence, position, ref, one column per task) for
    every sequence; ism_<i>_<k>.png (heat map over an importance logo, task k) for the
    first ``max_plots`` sequences; index.html. For a variant's window the summary records
    the variant (see :func:`variant_summary`).
    """
    out = Path(out_dir)
    tasks = list(dict.fromkeys(tasks)) if tasks else loaded.tasks[:4]  # a task given twice: once
    unknown = [t for t in tasks if t not in loaded.tasks]
    if unknown:
        raise ValueError(f"--task {unknown[0]!r} is not a task of this model; its tasks: "
                         f"{', '.join(loaded.tasks[:10])}{' ...' if len(loaded.tasks) > 10 else ''}")
    if scale not in SCALES:  # before the folder is cleared
        raise ValueError(f"--scale {scale!r} is not one of {', '.join(SCALES)}")
    if seqs.onehot.shape[1] > MAX_ISM_LENGTH:
        raise ValueError(f"{seqs.onehot.shape[1]:,} bp sequences: ISM scores 3 mutants a base, each a whole "
                         f"sequence (time grows as the length squared); give sequences of at most "
                         f"{MAX_ISM_LENGTH:,} bp (a --region, or shorter --fasta records)")
    fresh_folder(out, ["ism.parquet", "importance.parquet", "ism_*.png", "summary.json", "index.html"])
    cols = [loaded.tasks.index(t) for t in tasks]
    # (N, L, 4, t): ISM of ISM_CHUNK sequences at a time, of which only the chosen tasks are
    # kept: all T tasks of every sequence at once (Basset: 164) would be N x 3 MB, times 3
    effects = np.concatenate([ism(loaded.model, seqs.onehot[lo:lo + ISM_CHUNK], loaded.task_type, scale,
                                  batch_size)[..., cols] for lo in range(0, len(seqs.onehot), ISM_CHUNK)])
    imp = importance(effects, seqs.onehot)  # (N, L, t)
    n, length = seqs.onehot.shape[:2]
    ref = np.array(list("ACGTN"))[np.where(seqs.onehot.any(2), seqs.onehot.argmax(2), 4)]  # (N, L)
    long = pd.DataFrame({"sequence": np.repeat(seqs.names, length * 4),
                         "position": np.tile(np.repeat(np.arange(length), 4), n),
                         "ref": np.repeat(ref.reshape(-1), 4), "base": np.tile(list("ACGT"), n * length)})
    per_pos = pd.DataFrame({"sequence": np.repeat(seqs.names, length),
                            "position": np.tile(np.arange(length), n), "ref": ref.reshape(-1)})
    for k, task in enumerate(tasks):
        long[task] = effects[..., k].reshape(-1)
        per_pos[task] = imp[..., k].reshape(-1)
    long.to_parquet(out / "ism.parquet", index=False)
    per_pos.to_parquet(out / "importance.parquet", index=False)
    images = []
    for i in range(min(n, max_plots)):
        for k, task in enumerate(tasks):
            _, axes = plots.plt.subplots(2, 1, figsize=(min(20, 2 + 0.05 * length), 4.5))
            plots.plot_ism_heatmap(effects[i, :, :, k], seqs.onehot[i], f"{seqs.names[i]}, {task}: ISM ({scale})",
                                   axes[0])
            plots.plot_importance_logo(imp[i, :, k], seqs.onehot[i], "importance", axes[1])
            for seq_index, pos, label in seqs.marks:
                if seq_index == i:
                    for ax in axes:
                        ax.axvline(pos, color="k", ls="--", lw=0.8)
                    axes[1].set_title(f"importance; dashed: {label}")
            for row in seqs.sites[seqs.sites["sequence"] == i].itertuples():
                axes[1].axvspan(row.start - 0.5, row.end - 0.5, color="tab:orange", alpha=0.2)
            images.append((f"ism_{i}_{k}.png", f"{seqs.names[i]}, {task}"))
            plots.save(axes[0], out / images[-1][0])
    summary = {"sequences": n, "plotted": min(n, max_plots), "length": length, "tasks": tasks, "scale": scale,
               "max_abs_effect": {t: float(np.abs(effects[..., k]).max()) for k, t in enumerate(tasks)}}
    if seqs.variant is not None:
        summary["variant"] = variant_summary(seqs.variant, effects[0], tasks)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_index(out, "In-silico saturation mutagenesis", summary,
                ["ism.parquet", "importance.parquet", "summary.json"], images)
    return summary
