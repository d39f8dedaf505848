"""The arguments of ``search()``, checked before any work: what was received and what to give instead."""

from __future__ import annotations

from workbench.errors import ConfigError

MAX_TRIALS = 100000


def check_arguments(max_loss, trials, minutes, workers, final_seeds, fidelity=1.0, start_from=None,
                    scan_images=None) -> None:
    """Raise ConfigError on the first argument out of range."""
    if isinstance(max_loss, bool) or not isinstance(max_loss, (int, float)) or not 0 <= max_loss <= 100:
        raise ConfigError(f"max_loss is the accuracy loss allowed, in points (0.3 = 0.3 percentage points), "
                          f"from 0 to 100. Received: max_loss={max_loss!r}")
    if trials is None and minutes is None:
        raise ConfigError("Give the search a budget: trials=N, minutes=M or both. Received: trials=None, minutes=None")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS):
        raise ConfigError(f"trials must be a whole number from 1 to {MAX_TRIALS}. Received: trials={trials!r}")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float))
                                or not 0 < minutes <= 7 * 24 * 60):
        raise ConfigError(f"minutes must be a number in (0, 10080]. Received: minutes={minutes!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 512):
        raise ConfigError(f"workers must be a whole number from 1 to 512. Received: workers={workers!r}")
    if not isinstance(final_seeds, (list, tuple)) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in final_seeds):
        raise ConfigError(f"final_seeds must be a list of whole numbers >= 0. Received: final_seeds={final_seeds!r}")
    if isinstance(fidelity, bool) or not isinstance(fidelity, (int, float)) or not 0.01 <= fidelity <= 1.0:
        raise ConfigError(f"fidelity is the fraction of the training images a search trial fine-tunes on, from 0.01 "
                          f"to 1. Received: fidelity={fidelity!r}")
    if scan_images is not None and (isinstance(scan_images, bool) or not isinstance(scan_images, int)
                                    or not 100 <= scan_images <= 10_000_000):
        raise ConfigError(f"scan_images is how many validation images the sensitivity scan measures on, at least "
                          f"100 (None: all of them). Received: scan_images={scan_images!r}")
    if start_from is not None and (not isinstance(start_from, (list, tuple))
                                   or not all(isinstance(r, dict) for r in start_from)):
        raise ConfigError("start_from must be a list of recipes, each a dict with 'prune', 'quant' and 'finetune' "
                          f"settings. Received: start_from={start_from!r}"[:400])
