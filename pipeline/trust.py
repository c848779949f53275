"""What a model must be before it is unpickled: an MLflow pyfunc marked by closeprob, whose
pickle names only allowed classes and functions.

Unpickling runs whatever callables a pickle names, so the pickle is read statically first
(`pickletools`, nothing executed): every global it would import (GLOBAL, STACK_GLOBAL, INST)
must be a class of closeprob, scikit-learn, LightGBM, SciPy or pandas, or one of the few
functions numpy, pandas and the standard library use to rebuild arrays. `os.system`,
`builtins.eval`, `subprocess.Popen` and the like are refused, as is any global the scan
cannot resolve. This is a guard, not a sandbox: a model URI is code, and must come from a
registry you trust (README, "Trust boundary").
"""

from __future__ import annotations

import inspect
import pickletools
from importlib import import_module
from pathlib import Path
from typing import Any, NoReturn

import yaml

from closeprob.pipeline.errors import ModelNotFoundError

CLOSEPROB_MARK = "closeprob_version"  # MLmodel metadata written by log_model since 0.2
PYFUNC = "python_function"
PYFUNC_LOADER = "mlflow.pyfunc.model"

# Packages whose classes a closeprob model holds (pre-namespace names of 0.1 included).
CLASS_PACKAGES = {
    "closeprob",
    "pipeline",
    "models",
    "features",
    "sklearn",
    "lightgbm",
    "scipy",
    "pandas",
}
LEGACY_PACKAGES = {"pipeline", "models", "features"}
# Classes of those packages that touch files when built.
REFUSED_CLASSES = {"HDFStore", "ExcelWriter", "ExcelFile", "memmap", "Dataset"}
# Functions pickles use to rebuild arrays and containers; and plain containers.
ALLOWED_GLOBALS = {
    ("builtins", name)
    for name in ("set", "frozenset", "slice", "complex", "bytearray", "range", "object")
} | {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("collections", "Counter"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("mlflow.models.signature", "_TypeHints"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy", "float64"),  # a scalar type: OneHotEncoder keeps its output dtype as the class
    *{
        (f"numpy.{core}.{module}", name)
        for core in ("core", "_core")
        for module, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),
        )
    },
    *{("numpy.random._pickle", f"__{kind}_ctor") for kind in ("randomstate", "bit_generator")},
    ("numpy.random._pickle", "__generator_ctor"),
}
# pandas' and Cython's rebuild helpers are named for what they do.
REBUILD_PREFIXES = ("_unpickle", "__pyx_unpickle", "_new_", "new_block")
STRING_OPCODES = {
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "UNICODE",
    "BINUNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE8",
}
QUIET_OPCODES = {"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "FRAME", "PROTO"}


def check_closeprob_model(folder: Path, uri: str) -> None:
    """Refuse (ModelNotFoundError) a model at `folder` that closeprob did not make, before
    anything in it is unpickled."""
    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        _refuse(uri, "it has no MLmodel file")
    try:
        meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        _refuse(uri, f"its MLmodel file is unreadable ({type(exc).__name__})")
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    pyfunc = flavors.get(PYFUNC) if isinstance(flavors, dict) else None
    if not isinstance(pyfunc, dict) or pyfunc.get("loader_module") != PYFUNC_LOADER:
        kinds = sorted(flavors) if isinstance(flavors, dict) else []
        _refuse(uri, f"it is a {'/'.join(kinds) or 'unknown'} model, not a closeprob pyfunc")
    assert isinstance(pyfunc, dict)  # _refuse raised otherwise
    pickled = pyfunc.get("python_model")
    if not isinstance(pickled, str) or not (folder / pickled).is_file():
        _refuse(uri, "it has no python_model pickle")
    strangers = foreign_code(folder, pyfunc.get("code"))
    if strangers:
        _refuse(uri, f"its code folder holds {', '.join(strangers[:3])}, not only closeprob's code")
    unsafe = unsafe_globals((folder / pickled).read_bytes())
    if unsafe:
        marked = (meta.get("metadata") or {}).get(CLOSEPROB_MARK)
        origin = f"marked closeprob {marked}" if marked else "not marked by closeprob"
        _refuse(uri, f"its pickle ({origin}) would import {', '.join(unsafe[:3])}")


def foreign_code(folder: Path, code: object) -> list[str]:
    """Paths in the model's code folder (MLflow `code_paths`, put first on `sys.path` when the
    model loads) other than the `closeprob/` package of `.py` files that `log_model` ships:
    a stranger there could shadow any module imported after the load."""
    if not code:
        return []
    root = folder / str(code)
    if not root.is_dir():
        return [str(code)]
    strangers = [p.name for p in sorted(root.iterdir()) if p.name != "closeprob"]
    package = root / "closeprob"
    if package.is_dir():
        strangers += [
            str(p.relative_to(root))
            for p in sorted(package.rglob("*"))
            if p.is_symlink() or (p.is_file() and p.suffix != ".py")
        ]
    return strangers


def _refuse(uri: str, why: str) -> NoReturn:
    raise ModelNotFoundError(
        f"model {uri!r} is not a closeprob close-probability model ({why}); it was not loaded. "
        "Pass --model a model registered by `closeprob train` (a model URI is code: use only "
        "a registry you trust)"
    )


def unsafe_globals(data: bytes) -> list[str]:
    """'module.name' of every global the pickle names that is not allowed, in order, without
    unpickling; '<unresolved …>' where the scan cannot tell what would be imported."""
    found = []
    for module, name in pickled_globals(data):
        if module is None or name is None:
            found.append(f"<unresolved {name or module or 'global'}>")
        elif not is_allowed(module, name):
            found.append(f"{module}.{name}")
    return found


def pickled_globals(data: bytes) -> list[tuple[str | None, str | None]]:
    """(module, name) of each global import in the pickle, read with `pickletools.genops`.

    STACK_GLOBAL takes its two strings from the stack: they are resolved when the two pushes
    just before it were strings (or memo gets of strings), as every pickler writes them;
    otherwise (None, None), which is refused.
    """
    names: list[tuple[str | None, str | None]] = []
    recent: list[str | None] = []  # what each push put on the stack, when it is a string
    memo: dict[int, str | None] = {}
    try:
        for opcode, arg, _ in pickletools.genops(data):
            op, index = opcode.name, arg if isinstance(arg, int) else -1
            if op in STRING_OPCODES:
                recent.append(arg.decode("latin-1") if isinstance(arg, bytes) else arg)
            elif op in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):
                memo[len(memo) if op == "MEMOIZE" else index] = recent[-1] if recent else None
            elif op in ("GET", "BINGET", "LONG_BINGET"):
                recent.append(memo.get(index))
            elif op in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                names.append((module, name))
                recent.append(None)
            elif op == "STACK_GLOBAL":
                pair = recent[-2:] if len(recent) >= 2 else [None, None]
                names.append((pair[0], pair[1]))
                recent.append(None)
            elif op in ("EXT1", "EXT2", "EXT4"):
                names.append((None, f"extension code {arg}"))
            elif op not in QUIET_OPCODES:
                recent.append(None)
    except (ValueError, EOFError) as exc:  # not a pickle, or a truncated one
        names.append((None, f"unreadable pickle: {exc}"))
    return names


def is_allowed(module: str, name: str) -> bool:
    """A plain container or rebuild function, or a class of the packages a closeprob model
    holds (resolved by importing that installed package's module, never from the pickle)."""
    if (module, name) in ALLOWED_GLOBALS:
        return True
    package = module.split(".")[0]
    if package not in CLASS_PACKAGES:
        return False
    if package in {"pandas", "scipy", "sklearn"} and name.startswith(REBUILD_PREFIXES):
        return True
    current = _current_module(module)
    if current.split(".")[0] != "closeprob" and package in LEGACY_PACKAGES:
        return False  # a generic `models.x` would import whatever the working folder holds
    try:
        found: Any = import_module(current)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError):
        return False
    return inspect.isclass(found) and name.split(".")[-1] not in REFUSED_CLASSES


def _current_module(module: str) -> str:
    """Today's module for a closeprob 0.1 module name (`pipeline.pyfunc` and the like)."""
    from closeprob.pipeline.registry import LEGACY_MODULES

    return LEGACY_MODULES.get(module, module)
