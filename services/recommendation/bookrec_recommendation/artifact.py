"""The recommender as bytes, for the artifact bucket: the model's sparse weights and the catalogue.

`KIND` names these artifacts (their key prefix in the bucket, their lease, their metrics' label): the
builder publishes them, the replicas load them.

Only arrays, strings and numbers are stored (numpy's `.npy` format inside one `.npz`, read with
`allow_pickle=False`), so loading bytes can never run code whatever the bucket holds; the manifest's
SHA-256 is checked before. The catalogue's derived tables (features, popularity order) are rebuilt on
load, which costs milliseconds at the bundled catalogue's size.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import scipy.sparse as sp

from bookrec_common.artifacts import UnreadableArtifact
from bookrec_recommendation.catalogue import Catalogue, CatalogueEntry, series_of
from bookrec_recommendation.model import ItemNeighbourModel, Recommender

KIND = "recommendation-model"
# 2: the co-occurrence counts beside the weights, and each book's series. A format-1 artifact still loads
# (its similar books come from content alone until the next build); a replica of format 1 refuses a
# format-2 artifact and keeps its model (mid-deploy).
FORMAT = 2
READABLE = (1, 2)


class ArtifactFormatError(UnreadableArtifact):
    """Bytes that are not a recommender of this format."""


def dump(recommender: Recommender) -> bytes:
    model = recommender.model
    weights = model.weights.tocsr()
    entries = list(recommender.catalogue.entries.values())
    meta = {"format": FORMAT, "version": model.version, "shape": list(weights.shape),
            "min_collaborative": recommender.min_collaborative, "built_at": recommender.built_at,
            "active_users": recommender.active_users,
            "catalogue": [[e.book_id, e.title, list(e.authors), list(e.subjects), e.rating_sum,
                           e.rating_count, e.series.as_record() if e.series else None] for e in entries]}
    counts = model.cooccurrence if model.cooccurrence is not None else np.zeros(0, dtype=np.float32)
    out = io.BytesIO()
    np.savez(out, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
             book_ids=np.array(model.book_ids, dtype=str), popularity=model.popularity,
             data=weights.data, indices=weights.indices, indptr=weights.indptr, cooccurrence=counts)
    return out.getvalue()


def load(payload: bytes | bytearray) -> Recommender:
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
            meta = json.loads(arrays["meta"].tobytes())
            if meta.get("format") not in READABLE:
                raise ArtifactFormatError(f"recommender format {meta.get('format')!r}, expected one of "
                                          f"{READABLE}")
            weights = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                    shape=tuple(meta["shape"]))
            counts = arrays["cooccurrence"] if "cooccurrence" in arrays.files else None
            if counts is not None and len(counts) != weights.nnz:
                raise ArtifactFormatError(f"{len(counts)} co-occurrence counts for {weights.nnz} weights")
            model = ItemNeighbourModel([str(b) for b in arrays["book_ids"]], weights, arrays["popularity"],
                                       counts, version=meta["version"])
        catalogue = Catalogue(CatalogueEntry(book_id=b, title=t, authors=tuple(a), subjects=tuple(s),
                                             rating_sum=rs, rating_count=rc,
                                             series=series_of(series[0]) if series else None)
                              for b, t, a, s, rs, rc, *series in meta["catalogue"])
    except ArtifactFormatError:
        raise
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactFormatError(f"not a recommender artifact: {type(exc).__name__}: {exc}") from exc
    return Recommender(model, catalogue, min_collaborative=meta["min_collaborative"],
                       built_at=meta["built_at"], active_users=list(meta["active_users"]))
