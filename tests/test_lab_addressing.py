"""Lab subnets: inside 198.18.0.0/15, distinct per worker, and a fallback order that covers every /24."""
import ipaddress

from harness.lab import LAB_SUPERNET, SLOTS_PER_WORKER, subnet_candidates
from harness.run import Run

RFC2544 = ipaddress.ip_network("198.18.0.0/15")


def first(worker: int, sequence: int) -> ipaddress.IPv4Network:
    return next(subnet_candidates(worker, sequence))


def test_every_candidate_is_a_24_inside_the_rfc2544_range():
    candidates = list(subnet_candidates(3, 5))
    assert all(c.prefixlen == 24 and c.subnet_of(RFC2544) for c in candidates)
    assert len(set(candidates)) == len(candidates) == 2 ** (24 - LAB_SUPERNET.prefixlen)


def test_workers_never_share_a_first_choice():
    workers = 8
    firsts = {first(w, s) for w in range(workers) for s in range(SLOTS_PER_WORKER)}
    assert len(firsts) == workers * SLOTS_PER_WORKER


def test_a_worker_reuses_its_own_slots_in_a_long_run():
    assert first(1, 0) == first(1, SLOTS_PER_WORKER)
    assert first(1, 0) != first(1, 1)


def test_worker_index_comes_from_the_xdist_id(tmp_path):
    assert Run("r", "o", "gw7", tmp_path).worker_index == 7
    assert Run("r", "o", "main", tmp_path).worker_index == 0


def test_labels_name_the_run_its_owner_the_worker_and_the_pair(tmp_path):
    labels = Run("20261124-101500-42", "host/boot/42/99", "gw1", tmp_path).labels("ipsec/psk/a->b")
    assert labels == {"overlay-interop.run": "20261124-101500-42", "overlay-interop.owner": "host/boot/42/99",
                      "overlay-interop.worker": "gw1", "overlay-interop.pair": "ipsec/psk/a->b"}
