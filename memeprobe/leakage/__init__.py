"""memeprobe.leakage: duplicate texts and images within and across splits, by label, with clean subsets.

    from memeprobe.leakage import analyze, LeakageConfig, write_report
    result = analyze(dataset, store=None, config=LeakageConfig())
    write_report(result, dataset, "out/")

Modules: ``text`` (normalisation, exact and Jaccard pairs), ``images`` (pixel and perceptual hashes),
``neighbors`` (FAISS cosine search), ``links`` (near pairs kept as compact class links), ``classes``
(exact-duplicate classes, every pair streamed once, bounded per class), ``pairs``/``groups`` (kinds,
label flips, components), ``stream`` (the passes over every pair: counts, groups, clean ids, the listed
pairs), ``exploit`` (leak-exploit AUROC), ``analysis`` (runs it all), ``report`` (JSON, CSV, HTML),
``manifest`` (the report folder's manifest, clean-id lists), ``commands``.
Names are imported lazily so that ``memeprobe --help`` stays fast.
"""
import importlib

_EXPORTS = {
    "analyze": "analysis", "LeakageConfig": "analysis", "LeakageResult": "analysis",
    "CosineIndex": "neighbors", "cosine_pairs": "neighbors", "normalize_text": "text",
    "write_report": "report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"memeprobe.leakage.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'memeprobe.leakage' has no attribute {name!r}")
