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
from bookrec_recommendation.catalogue import Catalogue, CatalogueEntry
from bookrec_recommendation.model import ItemNeighbourModel, Recommender

KIND = "recommendation-model"
FORMAT = 1


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
                           e.rating_count] for e in entries]}
    out = io.BytesIO()
    np.savez(out, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
             book_ids=np.array(model.book_ids, dtype=str), popularity=model.popularity,
             data=weights.data, indices=weights.indices, indptr=weights.indptr)
    return out.getvalue()


def load(payload: bytes) -> Recommender:
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
            meta = json.loads(arrays["meta"].tobytes())
            if meta.get("format") != FORMAT:
                raise ArtifactFormatError(f"recommender format {meta.get('format')!r}, expected {FORMAT}")
            weights = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                    shape=tuple(meta["shape"]))
            model = ItemNeighbourModel([str(b) for b in arrays["book_ids"]], weights, arrays["popularity"],
                                       version=meta["version"])
        catalogue = Catalogue(CatalogueEntry(book_id=b, title=t, authors=tuple(a), subjects=tuple(s),
                                             rating_sum=rs, rating_count=rc)
                              for b, t, a, s, rs, rc in meta["catalogue"])
    except ArtifactFormatError:
        raise
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactFormatError(f"not a recommender artifact: {type(exc).__name__}: {exc}") from exc
    return Recommender(model, catalogue, min_collaborative=meta["min_collaborative"],
                       built_at=meta["built_at"], active_users=list(meta["active_users"]))
