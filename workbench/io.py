"""Atomic file writes: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or ".part")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the result ordinary permissions
    try:
        yield pathlib.Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> pathlib.Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return pathlib.Path(path)


def write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
    return write_bytes(path, text.encode("utf-8"))


def check_output_dir(path: str | os.PathLike) -> pathlib.Path:
    """Make sure ``path`` can take a published set of outputs before any work starts (see ``publish_folder``):
    missing, a workbench output folder, or a symlink to one, in a folder we can write in. Raises ConfigError
    naming the problem otherwise."""
    from workbench.errors import ConfigError

    path = pathlib.Path(path)
    received = f"Received: out={str(path)!r}"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"The output folder {str(path)!r} is an existing file. {received}; give a folder "
                          "(it is created if missing).")
    if path.is_dir() and not path.is_symlink() and any(p.name not in OUTPUT_NAMES for p in path.iterdir()):
        raise ConfigError(f"The output folder {str(path)!r} holds other files; the workbench replaces its "
                          f"outputs as a whole. {received}; give a new or empty folder.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"Cannot write the output folder {str(path)!r} ({exc.strerror or exc}). {received}; "
                          "choose a folder you can write to.") from None
    return path


OUTPUT_LINK_NOTE = "a symlink to the newest complete run in .<name>.runs/"


def publish_folder(out_dir: str | os.PathLike, write) -> pathlib.Path:
    """Write a set of outputs all-or-nothing: ``write(folder)`` fills a fresh hidden sibling folder, which is
    then published in one atomic step (``out_dir`` becomes a symlink to it, swapped with ``os.replace``).

    Readers of ``out_dir`` always see one complete set: the previous one until the swap, the new one after.
    Folders of earlier interrupted runs and superseded sets are removed. An ``out_dir`` that is a real
    folder holding only workbench outputs (written by an older version) is moved aside first.
    Returns the published folder. Raises ConfigError (nothing written) when ``out_dir`` is something else.
    """
    import glob
    import shutil

    out = pathlib.Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = out.parent / f".{out.name}.runs"
    runs.mkdir(exist_ok=True)
    current = out.resolve() if out.is_symlink() else None
    for stale in runs.iterdir():  # interrupted writes and superseded sets of earlier runs
        if stale.resolve() != current:
            shutil.rmtree(stale, ignore_errors=True)
    for stale in out.parent.glob(f".{glob.escape(out.name)}.link-run-*"):  # a run killed just before its swap
        if stale.is_symlink():
            stale.unlink(missing_ok=True)
    folder = pathlib.Path(tempfile.mkdtemp(dir=runs, prefix="run-"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)  # mkdtemp makes 0700 folders; give the result ordinary permissions
    try:
        write(folder)
        for item in folder.rglob("*"):
            if item.is_file():
                with open(item, "rb") as fh:
                    os.fsync(fh.fileno())
        link = out.parent / f".{out.name}.link-{folder.name}"
        os.symlink(os.path.relpath(folder, out.parent), link)
        if out.exists() and not out.is_symlink():
            if not out.is_dir() or any(p.name not in OUTPUT_NAMES for p in out.iterdir()):
                os.unlink(link)
                from workbench.errors import ConfigError

                raise ConfigError(f"{out} exists and is not a workbench output folder; give a new or empty folder "
                                  f"for the outputs. Received: out={str(out)!r}")
            legacy = runs / "legacy"
            os.replace(out, legacy)
        os.replace(link, out)  # the atomic step
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if current is not None and current != folder:
        shutil.rmtree(current, ignore_errors=True)
    shutil.rmtree(runs / "legacy", ignore_errors=True)
    return folder


OUTPUT_NAMES = ("model_int8.tflite", "model_pruned.keras", "report.json",  # compress()
                "search_report.json", "pareto.csv", "trials.csv", "study.journal", "cluster.log", "pick")  # search()
