"""The offline demo: ``memeprobe make-sample`` writes a synthetic Hateful-Memes-format sample with planted
leakage (:mod:`memeprobe.demo.synthetic`); ``memeprobe demo`` runs the whole pipeline on one
(:mod:`memeprobe.demo.commands`)."""
