"""The task kinds (bench.task.TaskKind): each module here registers its own in bench.task.KINDS.

- stitching: classification, similarity and reconstruction (a method translates one encoder's
  space into another's; the `method` plug-in family, bench/method.py);
- merging: partitions of the fit split, one encoder per part, a merger fuses their spaces (the
  `merger` family, bench/merging.py).

bench.task.KINDS imports this package on first use, and this package imports every module in it:
a new kind is a new module here (see docs/architecture.md), with no edit elsewhere.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
