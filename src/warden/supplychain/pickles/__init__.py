"""Static pickle analysis: a symbolic unpickler (:mod:`.vm`) and the policy that judges it
(:mod:`.rules`). Nothing here imports, loads or calls what it analyses."""

from __future__ import annotations
