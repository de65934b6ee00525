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
from memeprobe.leakage.analysis import LeakageConfig, LeakageResult, analyze
from memeprobe.leakage.neighbors import CosineIndex, cosine_pairs
from memeprobe.leakage.report import write_report
from memeprobe.leakage.text import normalize_text

__all__ = ["CosineIndex", "LeakageConfig", "LeakageResult", "analyze", "cosine_pairs", "normalize_text", "write_report"]
