"""What ``--runner dask`` adds to a run, applied only by the Dask preset and the run path, never by the graph
builder: the DaskRunner corrections (:mod:`.fix`) and the cluster's warm-up (:mod:`.warm_up`)."""
