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
"""
from memeprobe.registry import lazy_names

_EXPORTS = {  # resolved on first use: the analysis imports sklearn, pandas and faiss, the commands need none of them
    "LeakageConfig": "memeprobe.leakage.config:LeakageConfig",
    "LeakageResult": "memeprobe.leakage.analysis:LeakageResult",
    "analyze": "memeprobe.leakage.analysis:analyze",
    "CosineIndex": "memeprobe.leakage.neighbors:CosineIndex",
    "cosine_pairs": "memeprobe.leakage.neighbors:cosine_pairs",
    "write_report": "memeprobe.leakage.report:write_report",
    "normalize_text": "memeprobe.data.text:normalize_text",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_names(__name__, _EXPORTS)
