"""Position probability matrices: MEME files, JASPAR through ``pyjaspar``, sampling.

A :class:`Motif` holds a (W, 4) matrix of base probabilities in A, C, G, T
order (rows sum to 1). MEME minimal format (``MOTIF id [name]`` then a
``letter-probability matrix:`` block) is read and written with ``memelite``
(checked here first, so that a bad file gets an error naming its line); the
JASPAR database comes offline from the PyPI package ``pyjaspar``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnacnn.compression import is_gzip

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
        if not np.isfinite(probs).all():
            raise ValueError(f"motif {self.id}: a probability that is not a number (nan or inf)")
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


def _check_meme(path: Path) -> None:
    """Raise :class:`MemeFormatError` naming the line where ``path`` is not DNA MEME format.

    ``memelite.io.read_meme`` parses the file; it assumes a well-formed DNA file
    (a short matrix is dropped silently, a wrong row fails without a line
    number), so the structure is checked here first.
    """
    if is_gzip(path):
        raise MemeFormatError(f"{path} is gzip-compressed; MEME files are read as text: decompress it (`gunzip`)")
    lines = path.read_text(errors="replace").splitlines()
    motif, width, rows, n_motifs = None, None, 0, 0
    block: tuple[int, set[str]] | None = None  # a MEME 5 alphabet definition: its line, its letters
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if block is not None:
            if line.upper().startswith("END ALPHABET"):
                _check_alphabet_block(path, *block)
                block = None
            elif line and "=" not in line:  # "A "Adenine" CC0000 ~ T ...": core letters; "N = ACGT": an alias
                block[1].update(side.split()[0].upper() for side in line.split("~") if side.split())
        elif width is not None and rows < width:
            if not line:
                raise MemeFormatError(
                    f"{path}, line {number}: motif {motif}: a blank line after {rows} of its "
                    f"{width} rows"
                )
            try:
                values = [float(v) for v in line.split()]
            except ValueError:
                raise MemeFormatError(
                    f"{path}, line {number}: motif {motif} has {rows} of its {width} rows, "
                    f"then {line[:40]!r}"
                ) from None
            if len(values) != 4:
                raise MemeFormatError(
                    f"{path}, line {number}: motif {motif}: {len(values)} values, expected 4"
                )
            rows += 1
        elif line.startswith("ALPHABET") and "=" not in line.split('"')[0]:
            block = (number, set())  # ALPHABET "DNA" DNA-LIKE, then one line per letter
        elif line.startswith("ALPHABET"):
            alphabet = line.split("=", 1)[-1].strip()
            if alphabet.upper() not in ("ACGT", "DNA"):
                raise MemeFormatError(f"{path}, line {number}: alphabet {alphabet!r} is not DNA (ACGT)")
        elif raw.startswith("MOTIF"):
            if len(line.split()) < 2:
                raise MemeFormatError(f"{path}, line {number}: MOTIF without an id")
            motif, width, rows = line.split()[1], None, 0
        elif (match := _HEADER.match(line)) is not None:
            if motif is None:
                raise MemeFormatError(f"{path}, line {number}: a matrix before any MOTIF line")
            info = dict(_KEYVAL.findall(match.group(1)))
            if "w" not in info:
                raise MemeFormatError(f"{path}, line {number}: the matrix header has no `w=` width")
            if not info["w"].isdigit() or int(info["w"]) < 1:
                raise MemeFormatError(f"{path}, line {number}: motif {motif}: width w= {info['w']}, "
                                      "expected a count of rows (1 or more)")
            if int(info.get("alength", 4)) != 4:
                raise MemeFormatError(
                    f"{path}, line {number}: alength={info['alength']}, expected 4 (DNA)"
                )
            width, rows, n_motifs = int(info["w"]), 0, n_motifs + 1
    if block is not None:
        raise MemeFormatError(f"{path}, line {block[0]}: an alphabet definition without its `END ALPHABET` line")
    if width is not None and rows < width:
        raise MemeFormatError(f"{path}: motif {motif} ends after {rows} of {width} rows")
    if not n_motifs and not any(line.startswith("MEME version") for line in lines):
        raise MemeFormatError(f"{path} is not a MEME file (no `MEME version` line): convert it to MEME minimal "
                              "format (the MEME suite's `jaspar2meme`, `transfac2meme`)")
    if not n_motifs:
        raise MemeFormatError(f"{path} holds no motifs (no `letter-probability matrix:` blocks)")


def _check_alphabet_block(path: Path, number: int, letters: set[str]) -> None:
    """A MEME 5 alphabet definition is DNA when its core letters are A, C, G and T."""
    if letters != set(ALPHABET):
        raise MemeFormatError(f"{path}, line {number}: the alphabet defines {', '.join(sorted(letters)) or 'no letters'}"
                              f", not DNA (A, C, G, T)")


def read_meme(path: str | Path) -> list[Motif]:
    """Every motif of a MEME (minimal format, version 4 or 5) file, in file order.

    Parsed by ``memelite.io.read_meme``; ``nsites`` is not read back (None).

    Raises:
        MemeFormatError: with the line number, for a non-DNA alphabet, a matrix
            with the wrong number of rows/columns, or no motifs at all; or naming
            a ``MOTIF`` line or a motif id that occurs twice, or a matrix with a
            value that is not a probability (negative, nan).
    """
    from memelite.io import read_meme as memelite_read

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"MEME file not found: {path}")
    _check_meme(path)
    pwms = memelite_read(str(path))  # "ID [NAME ...]" -> (4, W)
    declared = sum(1 for line in path.read_text(errors="replace").splitlines()
                   if _HEADER.match(line.strip()))
    if len(pwms) != declared:
        raise MemeFormatError(
            f"{path}: {declared} matrices but {len(pwms)} distinct MOTIF lines; give each "
            "motif its own id"
        )
    motifs: list[Motif] = []
    for key, pwm in pwms.items():
        parts = key.split()
        if any(m.id == parts[0] for m in motifs):  # matches are reported, and looked up, by id
            raise MemeFormatError(f"{path}: motif id {parts[0]} occurs twice; give each motif its own id")
        try:
            motifs.append(Motif(parts[0], parts[1] if len(parts) > 1 else parts[0], pwm.T))
        except ValueError as err:
            raise MemeFormatError(f"{path}: {err}") from None
    return motifs


def write_meme(motifs: Iterable[Motif], path: str | Path) -> Path:
    """Write motifs as MEME minimal format (version 4, uniform background) with
    ``memelite.io.write_meme`` (which writes ``nsites= 1`` for every motif)."""
    from memelite.io import write_meme as memelite_write

    path = Path(path)
    pwms: dict[str, np.ndarray] = {}
    for m in motifs:
        key = f"{m.id} {m.name}" if m.name != m.id else m.id
        if key in pwms:
            raise ValueError(f"motif {key!r} occurs twice; MEME files need distinct MOTIF lines")
        pwms[key] = m.probs.T  # (4, W)
    memelite_write(str(path), pwms)
    return path


def jaspar_collection(
    collection: str = "CORE", tax_group: str = "vertebrates", release: str = "JASPAR2024"
) -> list[Motif]:
    """Every matrix (latest version of each) of a JASPAR collection, from ``pyjaspar`` (offline).

    The default is JASPAR 2024 CORE vertebrates (879 matrices).
    """
    from pyjaspar import jaspardb

    found = jaspardb(release=release).fetch_motifs(
        collection=collection, tax_group=[tax_group], all_versions=False)
    if not found:
        raise KeyError(f"JASPAR ({release}) has no matrices in collection {collection!r}, "
                       f"tax group {tax_group!r}")
    return [_from_jaspar(m) for m in found]


def _from_jaspar(found) -> Motif:
    """A pyjaspar (Bio.motifs.jaspar) motif as a :class:`Motif` of its counts."""
    counts = np.array([found.counts[b] for b in ALPHABET], dtype=np.float64).T  # (W, 4)
    return Motif(found.matrix_id, found.name, counts, int(counts[0].sum()))


def split_matrix_id(matrix_id: str) -> tuple[str, int]:
    """A JASPAR matrix ID as (base, version): ``MA0139.2`` -> (``MA0139``, 2); no version -> 0."""
    base, _, version = matrix_id.partition(".")
    return base, int(version) if version.isdigit() else 0


def find_motif(motifs: Sequence[Motif], key: str) -> Motif:
    """The motif named by ``key``: a matrix id with or without version (``MA0139``
    gives the latest version present) or a factor name (case-insensitive; the
    latest version when several matrices share it).

    Raises:
        KeyError: naming close candidates.
    """
    base = split_matrix_id(key)[0]
    by_id = [m for m in motifs if m.id == key or split_matrix_id(m.id)[0] == base]
    if not by_id:
        by_id = [m for m in motifs if m.name.upper() == key.upper()]
    if not by_id:
        near = [m.name for m in motifs if key.upper()[:3] in m.name.upper()][:10]
        raise KeyError(f"no motif {key!r} among {len(motifs)} motifs; similar names: {near}")
    return max(by_id, key=lambda m: split_matrix_id(m.id))


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
            found = max(vertebrate, key=lambda m: split_matrix_id(m.matrix_id)) if vertebrate else None
        if found is None:
            raise KeyError(f"JASPAR ({release}) has no matrix {key!r}")
        out.append(_from_jaspar(found))
    return out
