"""Tensor bytes that happen to start like a pickle are data, not findings; payloads still are."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from tests.supplychain.corpus.archives import zip_bytes

from warden.assess.finding import Severity
from warden.supplychain.scanner import scan_bytes


@pytest.mark.parametrize("steps", [640, 896, 1152, 1408])
def test_batchnorm_step_counter_that_looks_like_proto_is_not_a_finding(steps: int) -> None:
    # int64 640 is b"\x80\x02\x00\x00...": PROTO 2 followed by an invalid opcode.
    bn = torch.nn.BatchNorm1d(4)
    bn.num_batches_tracked.fill_(steps)
    buf = io.BytesIO()
    torch.save(bn.state_dict(), buf)
    assert scan_bytes(buf.getvalue(), "bn.pt").findings == ()


def test_random_members_starting_with_proto_give_no_findings() -> None:
    rng = np.random.default_rng(0)
    members = {}
    for i in range(2000):
        body = rng.integers(0, 256, size=256, dtype=np.uint8).tobytes()
        members[f"archive/data/{i}"] = b"\x80" + bytes([2 + i % 4]) + body
    result = scan_bytes(zip_bytes(members, zipfile.ZIP_STORED), "ckpt.pt")
    assert result.findings == ()


def test_a_broken_member_pickle_with_a_payload_is_still_flagged() -> None:
    payload = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x85R\xff\xff"  # breaks after REDUCE
    result = scan_bytes(zip_bytes({"archive/data/7": payload}, zipfile.ZIP_STORED), "ckpt.pt")
    assert result.worst == Severity.CRITICAL
    assert "scan.pickle.malformed" in {f.id for f in result.findings}


def test_a_broken_top_level_pickle_is_still_a_low_finding() -> None:
    result = scan_bytes(b"\x80\x02]q\x00(K\x01K\x02\xff", "weights.bin")  # list, then junk
    assert [f.id for f in result.findings] == ["scan.pickle.malformed-inert"]
    assert result.findings[0].severity == Severity.LOW
