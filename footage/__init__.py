"""Footage indexing: video files in, person tracks (sightings) with embeddings out.

Knows nothing of SQL, FAISS or Flask: ``analyse_video`` is a pure function of the video, the
``FootageSettings`` and the models, so its results can be keyed by (content hash, settings
fingerprint, model ids) and computed anywhere.
"""
