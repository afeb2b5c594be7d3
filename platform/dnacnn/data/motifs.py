"""Position probability matrices: MEME files, JASPAR through ``pyjaspar``, sampling.

A :class:`Motif` holds a (W, 4) matrix of base probabilities in A, C, G, T
order (rows sum to 1). MEME minimal format (``MOTIF id [name]`` then a
``letter-probability matrix:`` block) is read and written here; the JASPAR
database comes offline from the PyPI package ``pyjaspar``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ALPHABET = "ACGT"
_HEADER = re.compile(r"letter-probability matrix:(.*)$")
_KEYVAL = re.compile(r"(\w+)\s*=\s*(\S+)")


@dataclass(frozen=True, eq=False)
class Motif:
    """A position probability matrix.

    Attributes:
        id: matrix id, e.g. ``MA0139.2``.
        name: factor name, e.g. ``CTCF`` (may equal ``id``).
        probs: (W, 4) float64, rows in A, C, G, T order summing to 1.
        nsites: sites the matrix was built from, when known.
    """

    id: str
    name: str
    probs: np.ndarray
    nsites: int | None = field(default=None)

    def __post_init__(self) -> None:
        probs = np.asarray(self.probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != 4 or len(probs) == 0:
            raise ValueError(f"motif {self.id}: matrix has shape {probs.shape}, expected (W, 4)")
        if (probs < 0).any():
            raise ValueError(f"motif {self.id}: negative probabilities")
        sums = probs.sum(axis=1, keepdims=True)
        if (sums <= 0).any():
            raise ValueError(f"motif {self.id}: a row sums to 0")
        object.__setattr__(self, "probs", probs / sums)

    @property
    def width(self) -> int:
        return len(self.probs)

    @property
    def consensus(self) -> str:
        """Most probable base at each position."""
        return "".join(ALPHABET[i] for i in self.probs.argmax(axis=1))

    def information_content(self) -> np.ndarray:
        """(W,) bits per position against a uniform background (0 to 2)."""
        p = self.probs
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
        return 2.0 - entropy

    def reverse_complement(self) -> Motif:
        return Motif(self.id, self.name, self.probs[::-1, ::-1].copy(), self.nsites)

    def sample(self, rng: np.random.Generator, n: int = 1) -> list[str]:
        """``n`` sequences drawn position by position from the matrix (forward strand)."""
        cum = np.cumsum(self.probs, axis=1)  # (W, 4)
        u = rng.random((n, self.width, 1))
        idx = (u > cum[None, :, :]).sum(axis=2).clip(0, 3)  # (n, W)
        letters = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)[idx]
        return [row.tobytes().decode("ascii") for row in letters]

    def log_odds(self, seq: str, pseudo: float = 1e-3) -> float:
        """Log2-odds score of ``seq`` (length W) against a uniform background."""
        if len(seq) != self.width:
            raise ValueError(f"sequence of length {len(seq)} for a motif of width {self.width}")
        p = (self.probs + pseudo) / (1 + 4 * pseudo)
        idx = [ALPHABET.index(b) for b in seq.upper()]
        return float(np.log2(p[np.arange(self.width), idx] / 0.25).sum())


class MemeFormatError(ValueError):
    """A file that is not MEME minimal motif format."""


def read_meme(path: str | Path) -> list[Motif]:
    """Every motif of a MEME (minimal format, version 4 or 5) file, in file order.

    Raises:
        MemeFormatError: with the line number, for a non-DNA alphabet, a matrix
            with the wrong number of rows/columns, or no motifs at all.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"MEME file not found: {path}")
    lines = path.read_text(errors="replace").splitlines()
    motifs: list[Motif] = []
    i = 0
    current: tuple[str, str] | None = None
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("ALPHABET"):
            alphabet = line.split("=", 1)[-1].strip()
            if alphabet.upper() not in ("ACGT", "DNA"):
                raise MemeFormatError(
                    f"{path}, line {i + 1}: alphabet {alphabet!r} is not DNA (ACGT)"
                )
        elif line.startswith("MOTIF"):
            parts = line.split()
            if len(parts) < 2:
                raise MemeFormatError(f"{path}, line {i + 1}: MOTIF without an id")
            current = (parts[1], parts[2] if len(parts) > 2 else parts[1])
        elif (match := _HEADER.match(line)) is not None:
            if current is None:
                raise MemeFormatError(f"{path}, line {i + 1}: a matrix before any MOTIF line")
            info = dict(_KEYVAL.findall(match.group(1)))
            if "w" not in info:
                raise MemeFormatError(f"{path}, line {i + 1}: the matrix header has no `w=` width")
            width, alength = int(info["w"]), int(info.get("alength", 4))
            if alength != 4:
                raise MemeFormatError(f"{path}, line {i + 1}: alength={alength}, expected 4 (DNA)")
            rows = []
            j = i + 1
            while len(rows) < width and j < len(lines):
                text = lines[j].strip()
                j += 1
                if not text:
                    continue
                try:
                    values = [float(v) for v in text.split()]
                except ValueError:
                    raise MemeFormatError(
                        f"{path}, line {j}: motif {current[0]} has {len(rows)} of its {width} "
                        f"rows, then {text[:40]!r}"
                    ) from None
                if len(values) != 4:
                    raise MemeFormatError(
                        f"{path}, line {j}: motif {current[0]}: {len(values)} values, expected 4"
                    )
                rows.append(values)
            if len(rows) < width:
                raise MemeFormatError(f"{path}: motif {current[0]} ends after {len(rows)} of {width} rows")
            nsites = info.get("nsites")
            motifs.append(Motif(current[0], current[1], np.array(rows),
                                int(float(nsites)) if nsites else None))
            current = None
            i = j
            continue
        i += 1
    if not motifs:
        raise MemeFormatError(f"{path} holds no motifs (no `letter-probability matrix:` blocks)")
    return motifs


def write_meme(motifs: Iterable[Motif], path: str | Path) -> Path:
    """Write motifs as MEME minimal format (version 4, uniform background)."""
    path = Path(path)
    out = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
           "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for m in motifs:
        out.append(f"MOTIF {m.id} {m.name}" if m.name != m.id else f"MOTIF {m.id}")
        out.append(f"letter-probability matrix: alength= 4 w= {m.width} "
                   f"nsites= {m.nsites or 20} E= 0")
        out.extend(" ".join(f"{v:.6f}" for v in row) for row in m.probs)
        out.append("")
    path.write_text("\n".join(out))
    return path


def _base_id(matrix_id: str) -> tuple[str, int]:
    base, _, version = matrix_id.partition(".")
    return base, int(version) if version.isdigit() else 0


def find_motif(motifs: Sequence[Motif], key: str) -> Motif:
    """The motif named by ``key``: a matrix id with or without version (``MA0139``
    gives the latest version present) or a factor name (case-insensitive; the
    latest version when several matrices share it).

    Raises:
        KeyError: naming close candidates.
    """
    base = _base_id(key)[0]
    by_id = [m for m in motifs if m.id == key or _base_id(m.id)[0] == base]
    if not by_id:
        by_id = [m for m in motifs if m.name.upper() == key.upper()]
    if not by_id:
        near = [m.name for m in motifs if key.upper()[:3] in m.name.upper()][:10]
        raise KeyError(f"no motif {key!r} among {len(motifs)} motifs; similar names: {near}")
    return max(by_id, key=lambda m: _base_id(m.id))


def jaspar_motifs(keys: Sequence[str], release: str = "JASPAR2024") -> list[Motif]:
    """Motifs from the JASPAR database shipped offline by ``pyjaspar``.

    Args:
        keys: matrix ids (``MA0139`` = latest version, or ``MA0139.2``) or names.
        release: a JASPAR release pyjaspar ships (``JASPAR2014`` ... ``JASPAR2026``).
    """
    try:
        from pyjaspar import jaspardb
    except ImportError:
        raise ImportError(
            "pyjaspar is not installed: `pip install pyjaspar`, or pass a MEME file of motifs"
        ) from None
    db = jaspardb(release=release)
    out = []
    for key in keys:
        if re.match(r"^MA\d{4}(\.\d+)?$", key):
            found = db.fetch_motif_by_id(key)
        else:
            candidates = db.fetch_motifs_by_name(key)
            vertebrate = [m for m in candidates if m.tax_group == "vertebrates"] or candidates
            found = max(vertebrate, key=lambda m: _base_id(m.matrix_id)) if vertebrate else None
        if found is None:
            raise KeyError(f"JASPAR ({release}) has no matrix {key!r}")
        counts = np.array([found.counts[b] for b in ALPHABET], dtype=np.float64).T  # (W, 4)
        out.append(Motif(found.matrix_id, found.name, counts, int(counts[0].sum())))
    return out
