"""A real multi-node Ray cluster on this machine (ray.cluster_utils.Cluster: a head without CPUs and three
one-CPU worker nodes): a worker node running an extraction actor is killed mid-run; its shard is retried on a
surviving node and the final store equals an uninterrupted run's."""
from __future__ import annotations

import threading
import time

import pytest

from pipeline.extract import main as extract_main
from pipeline.store import layout
from pipeline.verify import main as verify_main
from tests.faults.conftest import extract_args
from tests.pipeline.helpers import assert_same_features

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _hosts_an_actor(node) -> bool:
    """Whether one of the node's worker processes is an extraction actor (Ray titles them ray::ShardActor...)."""
    import psutil

    raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
    return any("ShardActor" in " ".join(p.cmdline()) for p in raylet.children(recursive=True))


def _kill_an_actor_node(cluster, nodes, store, killed: list) -> None:
    """Once a shard is committed, remove (SIGKILL) a worker node that hosts a live extraction actor."""
    deadline = time.time() + 300
    while time.time() < deadline and not killed:
        if list(store.glob(f"{layout.JOURNAL_DIR}/*")):
            victim = next((n for n in nodes if _hosts_an_actor(n)), None)
            if victim is not None:
                cluster.remove_node(victim, allow_graceful=False)
                killed.append(victim.node_id)
                return
        time.sleep(0.1)


def test_a_killed_worker_node_is_survived_and_the_store_is_complete(reference, tmp_path):
    from ray.cluster_utils import Cluster

    manifest, ref = reference
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(3)]
    cluster.wait_for_nodes()
    store, killed = tmp_path / "store.zarr", []
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        killer = threading.Thread(target=_kill_an_actor_node, args=(cluster, nodes, store, killed), daemon=True)
        killer.start()
        code = extract_main(extract_args(manifest, store, "--backend", "ray", "--workers", "2", "--ray-address",
                                         cluster.address, "--videos-per-shard", "1"))
        killer.join(5)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert killed, "no node was killed while the extraction ran"
    assert code == 0
    assert verify_main(["--store", str(store), "--manifest", str(manifest)]) == 0
    assert_same_features(ref, store)
