"""Which model arguments are MLflow URIs: the one check, importable without MLflow.

The scorer and the CLI ask this before deciding whether to read a local
checkpoint folder or to fetch a model from the registry; importing this module
costs nothing (MLflow is imported only by the modules that talk to a store).
"""

from __future__ import annotations

import re

URI_SCHEMES = ("models:/", "runs:/")

_OTHER_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


def is_model_uri(spec: object) -> bool:
    """Whether ``spec`` is an MLflow model URI (``models:/...`` or ``runs:/...``); False
    for anything else, which callers read as a checkpoint folder.

    Raises:
        ValueError: ``spec`` is neither: a registry URI without its slash (``models:NAME``),
            or a URI of another scheme (``s3://``, ``https://``, ``file://``), which would
            otherwise be looked for as a folder of that odd name.
    """
    if not isinstance(spec, str):
        return False
    if spec.startswith(URI_SCHEMES):
        return True
    if spec.startswith(("models:", "runs:")):
        raise ValueError(f"model {spec!r} is not a registry URI: write models:/NAME@ALIAS, "
                         "models:/NAME/VERSION or runs:/RUN_ID/PATH")
    if (other := _OTHER_URI.match(spec)) is not None:
        local = " (give the folder's path)" if other["scheme"].lower() == "file" else ""
        raise ValueError(f"model {spec!r}: {other['scheme']}:// is not read{local}; give a registry URI "
                         "(models:/..., runs:/...) or a local checkpoint folder")
    return False
