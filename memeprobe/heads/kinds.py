"""The registry of head kinds: name → ``"module:Class"``, resolved (:func:`memeprobe.registry.resolve`) only when a
head of that kind is made, so the names serve choices and help without importing torch.

Every kind ``train-head`` accepts is here; :func:`~memeprobe.heads.factory.create_head` makes them."""

HEADS = {
    "logreg": "memeprobe.heads.logreg:LogRegHead",
    "mlp": "memeprobe.heads.mlp:MLPHead",
    "fusion": "memeprobe.heads.fusion:FusionHead",
    "retrieval": "memeprobe.heads.retrieval:RetrievalHead",
    "ensemble": "memeprobe.heads.ensemble:EnsembleHead",
    "span": "memeprobe.heads.span:SpanHead",
}
HEAD_NAMES = tuple(HEADS)
