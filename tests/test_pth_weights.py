"""torch.save files are read with the weights-only unpickler: tensors load, a planted payload never runs."""
from __future__ import annotations

import pathlib
import pickle
from collections import OrderedDict

import pytest
import torch

from mqeval.errors import UserError
from mqeval.model.pth_weights import read_pth


class Payload:
    """Unpickling this calls Path.touch(marker): what a malicious checkpoint would do with os.system."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_a_state_dict_loads_as_tensors(tmp_path):
    state = OrderedDict(meta_queries=torch.randn(4, 8), **{"connector.layers.0.fc1.weight": torch.ones(2, 2)})
    torch.save(state, tmp_path / "w.pth")
    loaded = read_pth(tmp_path / "w.pth")
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    torch.save({"state_dict": state, "step": 3}, tmp_path / "nested.pth")
    assert set(read_pth(tmp_path / "nested.pth")) == set(state)


def test_a_planted_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"meta_queries": torch.zeros(2), "evil": Payload(marker)}, tmp_path / "evil.pth")
    torch.load(tmp_path / "evil.pth", weights_only=False)  # the payload is live: the full unpickler runs it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UserError, match="holds more than tensors and plain containers"):
        read_pth(tmp_path / "evil.pth")
    assert not marker.exists()
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps(Payload(marker)))  # a bare pickle, not a torch zip
    with pytest.raises(UserError):
        read_pth(tmp_path / "raw.pkl")
    assert not marker.exists()


def test_corrupt_and_wrong_contents_are_one_line_errors(tmp_path):
    (tmp_path / "cut.pth").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(UserError, match="not a readable torch.save file"):
        read_pth(tmp_path / "cut.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(UserError, match="name -> tensor mapping"):
        read_pth(tmp_path / "list.pth")
    torch.save({"a": torch.zeros(1), "b": 3}, tmp_path / "mixed.pth")
    with pytest.raises(UserError, match="not tensors under string names, e.g. b"):
        read_pth(tmp_path / "mixed.pth")
    with pytest.raises(UserError, match="does not exist"):
        read_pth(tmp_path / "absent.pth")
